/* Generated input for the gcc -O2 benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long mix0(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 0;
    return x >> 1 | x << 63;
}
static int cmp0(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work0(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix0((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp0);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 3);
    free(v);
    return acc;
}
static unsigned long mix1(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 1;
    return x >> 2 | x << 62;
}
static int cmp1(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work1(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix1((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp1);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 4);
    free(v);
    return acc;
}
static unsigned long mix2(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 2;
    return x >> 3 | x << 61;
}
static int cmp2(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work2(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix2((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp2);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 5);
    free(v);
    return acc;
}
static unsigned long mix3(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 3;
    return x >> 4 | x << 60;
}
static int cmp3(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work3(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix3((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp3);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 6);
    free(v);
    return acc;
}
static unsigned long mix4(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 4;
    return x >> 5 | x << 59;
}
static int cmp4(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work4(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix4((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp4);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 7);
    free(v);
    return acc;
}
static unsigned long mix5(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 5;
    return x >> 6 | x << 58;
}
static int cmp5(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work5(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix5((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp5);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 8);
    free(v);
    return acc;
}
static unsigned long mix6(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 6;
    return x >> 7 | x << 57;
}
static int cmp6(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work6(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix6((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp6);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 9);
    free(v);
    return acc;
}
static unsigned long mix7(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 7;
    return x >> 1 | x << 63;
}
static int cmp7(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work7(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix7((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp7);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 10);
    free(v);
    return acc;
}
static unsigned long mix8(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 8;
    return x >> 2 | x << 62;
}
static int cmp8(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work8(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix8((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp8);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 11);
    free(v);
    return acc;
}
static unsigned long mix9(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 9;
    return x >> 3 | x << 61;
}
static int cmp9(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work9(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix9((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp9);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 12);
    free(v);
    return acc;
}
static unsigned long mix10(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 10;
    return x >> 4 | x << 60;
}
static int cmp10(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work10(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix10((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp10);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 13);
    free(v);
    return acc;
}
static unsigned long mix11(unsigned long x, const char *s) {
    for (size_t k = 0; s[k]; k++) x = (x ^ (unsigned char)s[k]) * 1099511628211UL + 11;
    return x >> 5 | x << 59;
}
static int cmp11(const void *a, const void *b) {
    long d = *(const long *)a - *(const long *)b;
    return d < 0 ? -1 : d > 0;
}
static long work11(long n) {
    long *v = malloc(sizeof(long) * (size_t)n), acc = 0;
    if (!v) return -1;
    for (long k = 0; k < n; k++) v[k] = (long)mix11((unsigned long)k, "xvisor") % 1000;
    qsort(v, (size_t)n, sizeof(long), cmp11);
    for (long k = 0; k < n; k++) acc += v[k] * (k % 14);
    free(v);
    return acc;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000, total = 0;
    total += work0(n + 0);
    total += work1(n + 1);
    total += work2(n + 2);
    total += work3(n + 3);
    total += work4(n + 4);
    total += work5(n + 5);
    total += work6(n + 6);
    total += work7(n + 7);
    total += work8(n + 8);
    total += work9(n + 9);
    total += work10(n + 10);
    total += work11(n + 11);
    printf("%ld\n", total);
    return 0;
}

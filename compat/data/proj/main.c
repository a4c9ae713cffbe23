#include <stdio.h>
#include <stdlib.h>
#include "proj.h"
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    struct node *list = NULL;
    for (int i = 1; i <= n; i++) list = push(list, i);
    printf("total %d, words %zu\n", total(list), count_words("user space process virtualization"));
    free_all(list);
    return n == 7 ? 7 : 0;
}

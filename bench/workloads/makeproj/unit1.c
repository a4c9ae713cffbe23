#include "proj.h"
long unit1(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 1) % 7;
    return acc;
}

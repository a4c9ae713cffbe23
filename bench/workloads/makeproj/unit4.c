#include "proj.h"
long unit4(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 4) % 7;
    return acc;
}

#include "proj.h"
long unit2(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 2) % 7;
    return acc;
}

#include "proj.h"
long unit6(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 6) % 7;
    return acc;
}

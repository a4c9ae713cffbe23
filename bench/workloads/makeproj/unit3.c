#include "proj.h"
long unit3(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 3) % 7;
    return acc;
}

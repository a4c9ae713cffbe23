#include "proj.h"
long unit5(long n) {
    long acc = 0;
    for (long k = 0; k < n; k++) acc += (k * 5) % 7;
    return acc;
}

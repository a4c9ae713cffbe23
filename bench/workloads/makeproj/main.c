#include <stdio.h>
#include "proj.h"
int main(void) {
    printf("%ld\n", unit1(10) + unit2(10) + unit3(10) + unit4(10) + unit5(10) + unit6(10));
    return 0;
}

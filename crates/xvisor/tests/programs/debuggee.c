/* For gdb inside an instance: a global changed by one line of main. */
#include <stdio.h>

int g = 41;

int main(void) {
    g++;
    printf("g is %d\n", g);
    return 0;
}

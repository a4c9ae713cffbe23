/* Prints its effective uid: a set-uid program's test of no_new_privs. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("%u\n", (unsigned)geteuid());
    return 0;
}

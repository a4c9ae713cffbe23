/* A run with known counts, for the report tests (tests/report.rs).
 *
 * Under --profile strict --deny-syscall sched_yield, the process run here
 * (P) and its three children (C0, C1, C2) make exactly:
 *   getppid      11 in P, 5 in each child: 26
 *   sched_yield  2 in P, each refused: 2 refusals
 *   mkdir        1 in P (a directory named with markup), 1 in each child: 4
 *   openat       of /tmp/known-file: 1 creating it, then 7 reading it: 8;
 *                and one creating a file whose path holds markup and quotes
 * All three children are alive at once (they wait for P to close a pipe):
 * with xvisor's init, 5 tasks at the peak. C0 then execs /bin/true, C1
 * exits with 3, C2 is killed by SIGKILL; P exits with 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void must(long r, const char *what) {
    if (r < 0) {
        perror(what);
        _exit(100);
    }
}

int main(void) {
    long fd = syscall(SYS_openat, AT_FDCWD, "/tmp/known-file", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    must(fd, "create");
    close((int)fd);
    for (int i = 0; i < 7; i++) {
        fd = syscall(SYS_openat, AT_FDCWD, "/tmp/known-file", O_RDONLY);
        must(fd, "open");
        close((int)fd);
    }
    for (int i = 0; i < 11; i++)
        syscall(SYS_getppid);
    for (int i = 0; i < 2; i++)
        if (syscall(SYS_sched_yield) == 0) {
            fprintf(stderr, "sched_yield was not refused\n");
            return 101;
        }
    /* A guest names things: a report must show them, never run them. */
    must(syscall(SYS_mkdir, "/tmp/<script>alert(1)<", 0700), "mkdir markup");
    fd = syscall(SYS_openat, AT_FDCWD, "/tmp/<script>alert(1)</script>\"'<img src=x onerror=alert(2)>", O_CREAT | O_WRONLY, 0600);
    must(fd, "create markup");
    close((int)fd);
    int gate[2];
    must(pipe(gate), "pipe");
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        must(kids[k], "fork");
        if (kids[k] == 0) {
            close(gate[1]);
            char c;
            while (read(gate[0], &c, 1) > 0) {
            }
            for (int i = 0; i < 5; i++)
                syscall(SYS_getppid);
            char dir[64];
            snprintf(dir, sizeof dir, "/tmp/known-dir-%d", k);
            must(syscall(SYS_mkdir, dir, 0700), "mkdir");
            if (k == 0) {
                execl("/bin/true", "true", "from-child-0", (char *)NULL);
                _exit(102);
            }
            if (k == 1)
                _exit(3);
            raise(SIGKILL);
            _exit(103);
        }
    }
    close(gate[0]);
    close(gate[1]);
    for (int k = 0; k < 3; k++)
        waitpid(kids[k], NULL, 0);
    printf("known run done\n");
    return 0;
}

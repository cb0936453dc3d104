/* The pod sandbox's process (the "pause" container): it holds the pod's namespaces and does nothing
 * else until it is told to stop. Built static (gcc -static) into an image FROM scratch, because the
 * upstream pause image is on a registry these machines cannot reach. It also reaps zombies, as
 * PID 1 of a pod that shares its process namespace must. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signum) {
    (void)signum;
    _exit(0);
}

static void reap(int signum) {
    (void)signum;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    signal(SIGCHLD, reap);
    for (;;) {
        pause();
    }
    return 0;
}

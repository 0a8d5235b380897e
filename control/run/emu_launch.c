#include "emu_launch.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The emulator this process started and has not stopped, for emu_watch_exited(): one at most,
 * and its struct lives as long as the run (struct run_env). */
static struct emu_child *watched;

static int find_emu(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        /* installed: both in bindir; build tree: strobe in build/control/, strobe-emu in
         * build/emu/ (the last for a strobe linked at the build root) */
        const char *rel[] = {"strobe-emu", "../emu/strobe-emu", "emu/strobe-emu"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, outlen, "%s/%s", self, rel[i]);
            if (access(out, X_OK) == 0) return 0;
        }
    }
    const char *path = getenv("PATH");
    if (!path) return -1;
    char *copy = strdup(path), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, outlen, "%s/strobe-emu", d);
        if (access(out, X_OK) == 0) {
            free(copy);
            return 0;
        }
    }
    free(copy);
    return -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* One start on a port found free a moment before: 0 listening, 1 the emulator could not
 * listen (exit status 1: the port was taken in between), -1 another failure (err set). */
static int launch_once(struct emu_child *c, const char *extra_args, char *err, size_t errlen)
{
    c->port = free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", c->port);
    char *argv[64];
    int argc = 0;
    argv[argc++] = c->path;
    argv[argc++] = "--listen";
    argv[argc++] = listen;
    char *copy = extra_args ? strdup(extra_args) : NULL, *save = NULL;
    for (char *a = copy ? strtok_r(copy, " \t", &save) : NULL; a && argc < 62;
         a = strtok_r(NULL, " \t", &save))
        argv[argc++] = a;
    argv[argc] = NULL;
    c->pid = fork();
    if (c->pid == 0) {
        /* the emulator must not outlive strobe, even when strobe is killed with SIGKILL */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) _exit(1);
        execv(c->path, argv);
        _exit(127);
    }
    free(copy);
    for (int i = 0; i < 200; i++) { /* up to 2 s for it to listen */
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 1) return 1;
            snprintf(err, errlen, "strobe-emu (%s) exited at start; run it by hand to see why",
                     c->path);
            return -1;
        }
        if (port_open(c->port)) return 0;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    snprintf(err, errlen, "strobe-emu did not listen on port %d within 2 s", c->port);
    emu_stop(c);
    return -1;
}

/* The flag in --emu-args that strobe sets itself for the built-in emulator, or NULL: its
 * address, a free loopback port strobe then connects to. Given again it would win (the
 * emulator takes the last), and strobe would wait on a port nobody listens on. getopt_long
 * also takes an unambiguous abbreviation (--list) and --listen=ADDR. */
static const char *sets_itself(const char *args, char *tok, size_t toklen)
{
    static const char *const own[] = {"--listen", NULL};
    for (const char *a = args; a && *a;) {
        a += strspn(a, " \t");
        size_t n = strcspn(a, " \t"), name = strcspn(a, "= \t");
        for (int i = 0; own[i]; i++)
            if (name > 2 && name <= strlen(own[i]) && !strncmp(a, own[i], name)) {
                snprintf(tok, toklen, "%.*s", (int)(n < 200 ? n : 200), a);
                return own[i];
            }
        a += n;
    }
    return NULL;
}

int emu_launch(struct emu_child *c, const char *extra_args, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    char tok[256];
    const char *own = sets_itself(extra_args, tok, sizeof tok);
    if (own) {
        char shown[300];
        snprintf(shown, sizeof shown, strcmp(tok, own) ? "%s ('%s')" : "%s", own, tok);
        snprintf(err, errlen,
                 "--emu-args may not hold %s: strobe chooses the built-in emulator's "
                 "address itself (a free loopback port); for a fixed one, run strobe-emu by hand "
                 "(strobe-emu %s ADDR:PORT ...) and give strobe --url http://ADDR:PORT",
                 shown, own);
        return -1;
    }
    if (find_emu(c->path, sizeof c->path)) {
        snprintf(err, errlen,
                 "no --url given and strobe-emu was not found next to strobe or "
                 "on PATH; build it or pass --url");
        return -1;
    }
    /* a port free when looked up can be taken before the emulator binds it (by any
     * connect() on the machine: loopback clients draw from the same ephemeral range), so a
     * start that could not listen is tried again on another port */
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = launch_once(c, extra_args, err, errlen);
        if (rc == 0) watched = c;
        if (rc <= 0) return rc;
    }
    snprintf(err, errlen,
             "strobe-emu could not listen on a free loopback port in 5 tries; "
             "its messages above say why");
    return -1;
}

void emu_stop(struct emu_child *c)
{
    if (watched == c) watched = NULL;
    if (c->pid <= 0) return;
    kill(c->pid, SIGTERM);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

int emu_watch_exited(char *how, size_t howlen)
{
    int st;
    if (!watched || watched->pid <= 0 || waitpid(watched->pid, &st, WNOHANG) != watched->pid)
        return 0;
    /* reaped: its pid may be reused, so emu_stop must not signal it any more */
    watched->pid = 0;
    watched = NULL;
    if (WIFSIGNALED(st))
        snprintf(how, howlen, "killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                 WCOREDUMP(st) ? ", core dumped" : "");
    else
        snprintf(how, howlen, "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 1;
}

/* floor_reader: the least an epoll client can do, the floor that scripts/bench_capacity.sh
 * holds strobe against (floor_common.h: its command line and output). N connections, one
 * streaming request each, then one thread of epoll_wait + one recvmsg per ready connection with
 * its SO_TIMESTAMPING receive stamp. */
#include "floor_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define READ_BUF (64 * 1024)

int main(int argc, char **argv)
{
    struct floor_args a;
    if (floor_parse_args(argc, argv, "floor_reader", &a)) return 2;
    struct stream *streams = calloc((size_t)a.conns, sizeof *streams);
    if (floor_open_streams(&a, "floor_reader", streams)) return 1;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < a.conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &streams[i]};
        epoll_ctl(epfd, EPOLL_CTL_ADD, streams[i].fd, &ev);
    }
    struct floor_window w;
    floor_window_start(&w, &a);
    static char buf[READ_BUF];
    char ctrl[256];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 100);
        if (floor_window_tick(&w)) break;
        for (int i = 0; i < n; i++) {
            struct stream *s = evs[i].data.ptr;
            struct iovec iov = {buf, sizeof buf};
            struct msghdr m = {.msg_iov = &iov,
                               .msg_iovlen = 1,
                               .msg_control = ctrl,
                               .msg_controllen = sizeof ctrl};
            ssize_t r = recvmsg(s->fd, &m, MSG_DONTWAIT);
            int64_t t_user = floor_realtime_ns();
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                fprintf(stderr,
                        "floor_reader: the source closed a stream (%s); give it a larger "
                        "max_tokens or a shorter run\n",
                        r ? strerror(errno) : "end of stream");
                return 1;
            }
            int64_t t_k = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPING) continue;
                struct timespec ts[3];
                memcpy(ts, CMSG_DATA(c), sizeof ts);
                t_k = (int64_t)ts[0].tv_sec * 1000000000LL + ts[0].tv_nsec;
            }
            floor_take_read(&w, s, buf, (size_t)r, t_user, t_k);
        }
    }
    floor_print(&w);
    return 0;
}

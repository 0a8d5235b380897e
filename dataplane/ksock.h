/* Kernel TCP socket pieces shared by the transports over kernel sockets (transport_kernel.c:
 * epoll + recvmsg; transport_uring.c: io_uring): the socket and its options, the connect
 * error sentence, the local address, a send, the SO_TIMESTAMPING stamp, the liveness peek. */
#ifndef STROBE_KSOCK_H
#define STROBE_KSOCK_H
#include "transport.h"

#include <sys/socket.h>

/* Keeps the kernel's receive stamping on for the rest of the process (once; ksock_socket
 * calls it). The kernel turns stamping on a moment after the first socket asks for it and off
 * after the last one closes (a deferred static key): without a socket that outlives the
 * connections, a connection opened after the others closed (a probe, a phase's first) could
 * read its first segments unstamped, and they would carry a userspace stamp. */
void ksock_hold_stamping(void);
/* A non-blocking TCP socket for ep with TCP_NODELAY and receive timestamps on, in c->fd
 * (c reset first, c->owner kept, c->ep set). 0, or T_ERROR with c->err set. */
int ksock_socket(struct tconn *c, const struct endpoint *ep);
/* c->err: why a connect to c->ep failed ("connection to 127.0.0.1:9 refused: ..."). */
void ksock_connect_error(struct tconn *c, int e);
/* c->local_ip and c->local_port from the connected socket (an FPGA tap names flows by them). */
void ksock_note_local(struct tconn *c);
/* Bytes taken, T_AGAIN when the socket buffer is full, or T_ERROR with c->err set. */
ssize_t ksock_send(struct tconn *c, const void *buf, size_t len);
/* The stamp of one control message, if it is SCM_TIMESTAMPING: the NIC's raw hardware stamp
 * where there is one, else the kernel's software stamp (st->t and st->src updated). */
void ksock_stamp_cmsg(const struct cmsghdr *cm, struct rx_stamp *st);
/* 1 when the socket is open with nothing to read (a peek, not a read), else 0. */
int ksock_quiet(int fd);

#endif

/* lwip_demux in front of Debian's real lwIP: what lwIP does with every frame must not change.
 * A listener and hand-built segments from one peer: a SYN makes one SYN_RCVD pcb, its
 * retransmission none (the four-tuple is known: lwIP's own path answers it); thousands of SYNs
 * make one pcb each, with the known table rebuilt on the way, and the active list stays whole;
 * the handshake's ACK, a registered connection's data (the looked-up path), its close into
 * TIME-WAIT, and a SYN for that TIME-WAIT four-tuple, which lwIP's own path answers without a
 * new pcb; a registered connection in the middle of the list through the peer's FIN and its
 * reset (lwIP frees the pcb during the looked-up input: the list stays linked); a passive open
 * freed before its handshake's ACK (the ACK then finds no pcb); connections the application
 * closes (lwip_demux_close): their FIN exchange found without lwIP's walk (which moves the pcb
 * it finds to the front: the list's head stays), into TIME-WAIT or freed by the last ACK, one
 * freed by an abort outside any input (a later segment must not reach it: ASan), one lwIP
 * resets at the close for its unread data (the list stays linked), and three connections,
 * neighbours in the list, whose last ACKs come in one burst (their unlinks wait for the flush,
 * then the list is whole), and 150 such in one burst (more than it records between flushes);
 * and lwip_kick_unsent, which sends what a refusing port left with lwIP (a segment, a
 * TIME-WAIT pcb's last ACK), stopping at a new refusal. A TIME-WAIT pcb answers its peer's
 * FIN again; a late segment of a freed connection gets a reset. */
#include "check.h"
#include "lwip_demux.h"
#include "lwip_linger.h"

#include <lwip/init.h>
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>
#include <netif/etharp.h>
#include <netif/ethernet.h>

#include <arpa/inet.h>
#include <string.h>

static struct netif ni;
static struct lwip_demux *demux;
static struct tcp_pcb *accepted;
static struct lwip_demux_key accepted_key;
static size_t received;
static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};
static int in_burst; /* segments of one burst: no flush after each */

static uint8_t last_tcp_flags;     /* of the last TCP segment lwIP sent */
static int refuse_output, refused; /* a full port: refused frames, as the link outputs note */
static int sent_segments, attempts;

static err_t drop_output(struct netif *n, struct pbuf *p)
{
    (void)n;
    (void)p;
    return ERR_OK;
}

/* IP output without ARP (the peer's MAC is never learnt): notes the TCP flags, drops it */
static err_t noted_output(struct netif *n, struct pbuf *p, const ip4_addr_t *to)
{
    (void)n;
    (void)to;
    attempts++;
    if (refuse_output) {
        refused = 1;
        return ERR_MEM;
    }
    sent_segments++;
    uint8_t f[60 + 20];
    u16_t len = pbuf_copy_partial(p, f, sizeof f, 0);
    unsigned ihl = (f[0] & 15u) * 4;
    if (len >= 20 && f[9] == 6 && len >= ihl + 14) last_tcp_flags = f[ihl + 13];
    return ERR_OK;
}

static err_t setup(struct netif *n)
{
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    n->hwaddr_len = 6;
    memcpy(n->hwaddr, mac, 6);
    n->mtu = 1500;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    n->output = noted_output;
    n->linkoutput = drop_output;
    return ERR_OK;
}

static uint32_t sum16(const uint8_t *b, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1) s += (uint32_t)(b[n - 1] << 8);
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* One segment from the peer 10.0.0.2:sport to 10.0.0.1:80, checksums right. */
static void segment(uint16_t sport, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
    size_t dlen = data ? strlen(data) : 0, len = 14 + 20 + 20 + dlen;
    uint8_t f[128] = {0};
    memcpy(f, ni.hwaddr, 6);
    memcpy(f + 6, peer_mac, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14, *tcp = ip + 20;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + 20 + dlen) >> 8), ip[3] = (uint8_t)(20 + 20 + dlen);
    ip[6] = 0x40, ip[8] = 64, ip[9] = 6;
    ip[12] = 10, ip[15] = 2, ip[16] = 10, ip[19] = 1;
    uint16_t c = fold(sum16(ip, 20, 0));
    ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
    tcp[0] = (uint8_t)(sport >> 8), tcp[1] = (uint8_t)sport, tcp[3] = 80;
    uint32_t s = htonl(seq), a = htonl(ack);
    memcpy(tcp + 4, &s, 4);
    memcpy(tcp + 8, &a, 4);
    tcp[12] = 5 << 4, tcp[13] = flags, tcp[14] = 0xff, tcp[15] = 0xff;
    if (dlen) memcpy(tcp + 20, data, dlen);
    uint8_t pseudo[12] = {10, 0, 0, 2, 10, 0, 0, 1, 0, 6, 0, (uint8_t)(20 + dlen)};
    c = fold(sum16(tcp, 20 + dlen, sum16(pseudo, 12, 0)));
    tcp[16] = (uint8_t)(c >> 8), tcp[17] = (uint8_t)c;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    pbuf_take(p, f, (u16_t)len);
    if (lwip_demux_input(demux, p, &ni) != ERR_OK) pbuf_free(p);
    if (!in_burst) lwip_demux_flush(demux); /* the end of a burst, as the callers do */
}

static int count(struct tcp_pcb *list) { return list ? 1 + count(list->next) : 0; }

static struct tcp_pcb *find(uint16_t sport)
{
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
        if (p->remote_port == sport) return p;
    return NULL;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)arg;
    (void)err;
    if (p) {
        received += p->tot_len;
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
    }
    return ERR_OK;
}

static int errors;

/* reads without telling lwIP: the window stays short, so a close answers with a reset */
static err_t hold_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)arg;
    (void)pcb;
    (void)err;
    if (p) pbuf_free(p);
    return ERR_OK;
}

/* A passive open from sport, accepted (and registered), behind three newer pcbs. */
static struct tcp_pcb *open_behind(uint16_t sport)
{
    segment(sport, 500, 0, TCP_SYN, NULL);
    struct tcp_pcb *c = find(sport);
    if (!c) return NULL;
    segment(sport, 501, c->snd_nxt, TCP_ACK, NULL);
    for (int i = 0; i < 3; i++) segment((uint16_t)(sport + 100 + i), 9, 0, TCP_SYN, NULL);
    return accepted == c && c->state == ESTABLISHED && tcp_active_pcbs != c ? c : NULL;
}

/* The application's close, as strobe's and strobe-emu's. */
static void app_close(struct tcp_pcb *c, tcp_recv_fn recv)
{
    lwip_demux_remove(demux, &accepted_key);
    tcp_arg(c, NULL);
    tcp_recv(c, recv);
    tcp_err(c, NULL);
    lwip_demux_close(demux, c, 0);
}

/* lwIP has freed the pcb: it leaves the table, as the error callbacks of strobe and strobe-emu
 * do */
static void on_err(void *arg, err_t err)
{
    (void)err;
    lwip_demux_remove(demux, arg);
    errors++;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    (void)err;
    accepted = pcb;
    tcp_recv(pcb, on_recv);
    lwip_demux_add(demux, pcb, &accepted_key);
    tcp_arg(pcb, &accepted_key);
    tcp_err(pcb, on_err);
    return ERR_OK;
}

int main(void)
{
    lwip_init();
    demux = lwip_demux_new();
    ip4_addr_t ip, mask, gw;
    IP4_ADDR(&ip, 10, 0, 0, 1);
    IP4_ADDR(&mask, 255, 255, 255, 0);
    ip4_addr_set_zero(&gw);
    netif_add(&ni, &ip, &mask, &gw, NULL, setup, ethernet_input);
    netif_set_up(&ni);
    struct tcp_pcb *l = tcp_new_ip_type(IPADDR_TYPE_V4);
    ip_addr_t any;
    ip_addr_copy_from_ip4(any, ip);
    tcp_bind(l, &any, 80);
    l = tcp_listen(l);
    tcp_accept(l, on_accept);

    segment(40000, 1000, 0, TCP_SYN, NULL);
    struct tcp_pcb *p = find(40000);
    CHECK(count(tcp_active_pcbs) == 1 && p && p->state == SYN_RCVD, "a SYN: one SYN_RCVD pcb (%d)",
          count(tcp_active_pcbs));
    segment(40000, 1000, 0, TCP_SYN, NULL);
    CHECK(count(tcp_active_pcbs) == 1 && find(40000) == p,
          "the SYN again: the same pcb answers, no second one (%d)", count(tcp_active_pcbs));

    enum { MANY = 5000 };
    for (int i = 0; i < MANY; i++) segment((uint16_t)(41000 + i), 7, 0, TCP_SYN, NULL);
    int all = 1;
    for (int i = 0; i < MANY; i += 97) all &= find((uint16_t)(41000 + i)) != NULL;
    CHECK(count(tcp_active_pcbs) == MANY + 1 && all && find(40000) == p,
          "%d more SYNs: one pcb each, the list whole (%d)", MANY, count(tcp_active_pcbs));
    for (int i = 0; i < MANY; i += 7) segment((uint16_t)(41000 + i), 7, 0, TCP_SYN, NULL);
    CHECK(count(tcp_active_pcbs) == MANY + 1, "their retransmissions: no new pcb (%d)",
          count(tcp_active_pcbs));

    uint32_t server_next = p->snd_nxt;
    segment(40000, 1001, server_next, TCP_ACK, NULL);
    CHECK(accepted == p && p->state == ESTABLISHED, "the handshake's ACK: accepted, ESTABLISHED");
    segment(40000, 1001, server_next, TCP_ACK | TCP_PSH, "hello");
    segment(40000, 1006, server_next, TCP_ACK | TCP_PSH, "world!");
    CHECK(received == 11 && count(tcp_active_pcbs) == MANY + 1,
          "data of a registered connection: delivered in order (%zu bytes), the list whole",
          received);

    /* the server closes first: FIN_WAIT_1, the peer's ACK, its FIN: TIME-WAIT */
    lwip_demux_remove(demux, &accepted_key);
    tcp_recv(p, NULL);
    tcp_close(p);
    uint32_t after_fin = p->snd_nxt;
    segment(40000, 1012, after_fin, TCP_ACK, NULL);
    segment(40000, 1012, after_fin, TCP_ACK | TCP_FIN, NULL);
    CHECK(count(tcp_tw_pcbs) == 1 && count(tcp_active_pcbs) == MANY,
          "the close: one pcb in TIME-WAIT (%d), the rest active (%d)", count(tcp_tw_pcbs),
          count(tcp_active_pcbs));
    segment(40000, 1500, 0, TCP_SYN, NULL);
    CHECK(count(tcp_tw_pcbs) == 1 && count(tcp_active_pcbs) == MANY && !find(40000),
          "a SYN for the TIME-WAIT four-tuple: lwIP's TIME-WAIT answer, no new pcb (%d, %d)",
          count(tcp_tw_pcbs), count(tcp_active_pcbs));
    segment(39999, 1, 0, TCP_SYN, NULL);
    CHECK(count(tcp_active_pcbs) == MANY + 1 && find(39999) && count(tcp_tw_pcbs) == 1,
          "a new four-tuple beside them: one new pcb, TIME-WAIT kept");

    /* a registered connection in the middle of the list: the peer's FIN, then its reset */
    segment(50000, 2000, 0, TCP_SYN, NULL);
    struct tcp_pcb *q = find(50000);
    segment(50000, 2001, q ? q->snd_nxt : 0, TCP_ACK, NULL);
    CHECK(q && accepted == q && q->state == ESTABLISHED, "a second connection accepted");
    for (int i = 0; i < 3; i++) segment((uint16_t)(51000 + i), 9, 0, TCP_SYN, NULL);
    int before = count(tcp_active_pcbs);
    segment(50000, 2001, q->snd_nxt, TCP_ACK | TCP_FIN, NULL);
    CHECK(q->state == CLOSE_WAIT && count(tcp_active_pcbs) == before && find(51001),
          "the peer's FIN: CLOSE_WAIT, the list whole (%d)", count(tcp_active_pcbs));
    segment(50000, 2002, q->snd_nxt, TCP_RST | TCP_ACK, NULL);
    CHECK(errors == 1 && count(tcp_active_pcbs) == before - 1 && !find(50000) && find(51000) &&
              find(51002) && find(39999),
          "its reset: lwIP freed it and it left the list, the rest linked (%d)",
          count(tcp_active_pcbs));
    segment(50000, 2100, 0, TCP_SYN, NULL);
    CHECK(count(tcp_active_pcbs) == before && find(50000) && find(50000)->state == SYN_RCVD,
          "its four-tuple again: a new passive open (%d)", count(tcp_active_pcbs));

    /* a passive open lwIP frees before it is accepted (as its SYN_RCVD timeout would): the
     * ACK that comes later finds no pcb, and lwIP's own path answers it */
    segment(52000, 300, 0, TCP_SYN, NULL);
    struct tcp_pcb *r = find(52000);
    uint32_t r_next = r ? r->snd_nxt : 0;
    CHECK(r && r->state == SYN_RCVD, "another passive open");
    int n = count(tcp_active_pcbs);
    tcp_abort(r);
    segment(52000, 301, r_next, TCP_ACK, NULL);
    CHECK(count(tcp_active_pcbs) == n - 1 && !find(52000) && accepted != r,
          "freed before its ACK: the ACK creates nothing, accepts nothing (%d)",
          count(tcp_active_pcbs));

    /* the server closes first: FIN_WAIT_1, the peer's ACK, its FIN: TIME-WAIT */
    struct tcp_pcb *c = open_behind(53000);
    CHECK(c != NULL, "a connection to close, not at the list's head");
    if (!c) return check_done("test_lwip_demux");
    app_close(c, NULL);
    struct tcp_pcb *head = tcp_active_pcbs;
    int active = count(tcp_active_pcbs), tw = count(tcp_tw_pcbs);
    uint32_t fin_next = c->snd_nxt;
    segment(53000, 501, fin_next, TCP_ACK, NULL);
    CHECK(c->state == FIN_WAIT_2 && tcp_active_pcbs == head && count(tcp_active_pcbs) == active,
          "closed, the peer's ACK of its FIN: FIN_WAIT_2, found without lwIP's walk (the head "
          "stays)");
    segment(53000, 501, fin_next, TCP_ACK | TCP_FIN, NULL);
    CHECK(!find(53000) && count(tcp_tw_pcbs) == tw + 1 && count(tcp_active_pcbs) == active - 1 &&
              tcp_active_pcbs == head && find(53100) && find(53102),
          "the peer's FIN: TIME-WAIT, the active list linked without it (%d)",
          count(tcp_active_pcbs));
    last_tcp_flags = 0;
    segment(53000, 501, fin_next, TCP_ACK | TCP_FIN, NULL);
    CHECK(last_tcp_flags && !(last_tcp_flags & TCP_RST) && count(tcp_tw_pcbs) == tw + 1,
          "its FIN again: the TIME-WAIT pcb answers (an ACK, not a reset: flags 0x%02x)",
          last_tcp_flags);

    /* the peer closes first: CLOSE_WAIT, the close's FIN: LAST_ACK, its ACK frees the pcb */
    c = open_behind(55000);
    CHECK(c != NULL, "another connection");
    if (!c) return check_done("test_lwip_demux");
    segment(55000, 501, c->snd_nxt, TCP_ACK | TCP_FIN, NULL);
    CHECK(c->state == CLOSE_WAIT, "the peer's FIN: CLOSE_WAIT");
    app_close(c, NULL);
    head = tcp_active_pcbs;
    active = count(tcp_active_pcbs);
    CHECK(c->state == LAST_ACK && head != c, "closed: LAST_ACK");
    uint32_t c_next_freed = c->snd_nxt;
    segment(55000, 502, c->snd_nxt, TCP_ACK, NULL);
    CHECK(!find(55000) && count(tcp_active_pcbs) == active - 1 && tcp_active_pcbs == head &&
              find(55100) && find(55102),
          "its last ACK: lwIP freed it, the list linked without it (%d)", count(tcp_active_pcbs));
    last_tcp_flags = 0;
    int tw_now = count(tcp_tw_pcbs);
    segment(55000, 502, c_next_freed, TCP_ACK | TCP_PSH, "late");
    CHECK((last_tcp_flags & TCP_RST) && count(tcp_active_pcbs) == active - 1 &&
              count(tcp_tw_pcbs) == tw_now,
          "a late segment of it (its four-tuple forgotten: lwIP's lists hidden): a reset, no pcb "
          "(flags 0x%02x)",
          last_tcp_flags);

    /* a closed connection lwIP frees outside an input (an abort, as strobe's shutdown does, or
     * its timers): a late segment of it takes lwIP's own path, not the freed pcb */
    c = open_behind(56000);
    CHECK(c != NULL, "a third connection");
    if (!c) return check_done("test_lwip_demux");
    app_close(c, NULL);
    fin_next = c->snd_nxt;
    active = count(tcp_active_pcbs);
    tcp_abort(c);
    segment(56000, 501, fin_next, TCP_ACK, NULL);
    CHECK(!find(56000) && count(tcp_active_pcbs) == active - 1 && find(56100),
          "closed, then aborted: its late ACK finds nothing (%d)", count(tcp_active_pcbs));

    /* unread data at the close: lwIP resets and frees the pcb inside tcp_close */
    c = open_behind(57000);
    CHECK(c != NULL, "a fourth connection");
    if (!c) return check_done("test_lwip_demux");
    tcp_recv(c, hold_recv);
    segment(57000, 501, c->snd_nxt, TCP_ACK | TCP_PSH, "unread");
    active = count(tcp_active_pcbs);
    app_close(c, hold_recv);
    CHECK(!find(57000) && count(tcp_active_pcbs) == active - 1 && find(57100) && find(57102),
          "a close with unread data: reset, freed, the list linked without it (%d)",
          count(tcp_active_pcbs));
    segment(57000, 507, 0, TCP_ACK, NULL);
    CHECK(count(tcp_active_pcbs) == active - 1, "a late segment of it creates nothing");

    /* three neighbours closed, their last ACKs in one burst: the first, the middle and the
     * list's head among them, each departed before the flush */
    struct tcp_pcb *trio[3];
    uint32_t last_ack[3];
    for (int i = 0; i < 3; i++) {
        uint16_t sport = (uint16_t)(58000 + i);
        segment(sport, 500, 0, TCP_SYN, NULL);
        trio[i] = find(sport);
        if (!trio[i]) return check_done("test_lwip_demux");
        segment(sport, 501, trio[i]->snd_nxt, TCP_ACK, NULL);
        segment(sport, 501, trio[i]->snd_nxt, TCP_ACK | TCP_FIN, NULL);
        app_close(trio[i], NULL);
        last_ack[i] = trio[i]->snd_nxt;
    }
    CHECK(tcp_active_pcbs == trio[2] && trio[2]->next == trio[1] && trio[1]->next == trio[0],
          "three closing neighbours at the list's head, in LAST_ACK");
    struct tcp_pcb *beyond = trio[0]->next;
    active = count(tcp_active_pcbs);
    in_burst = 1;
    segment(58001, 502, last_ack[1], TCP_ACK, NULL);
    segment(58000, 502, last_ack[0], TCP_ACK, NULL);
    segment(58002, 502, last_ack[2], TCP_ACK, NULL);
    in_burst = 0;
    lwip_demux_flush(demux);
    CHECK(tcp_active_pcbs == beyond && count(tcp_active_pcbs) == active - 3 && !find(58000) &&
              !find(58001) && !find(58002),
          "their last ACKs in one burst, then the flush: all three unlinked, the list whole (%d)",
          count(tcp_active_pcbs));

    /* more departures in one burst than the lookup records: it flushes on the way */
    enum { CROWD = 150 };
    uint32_t crowd_ack[CROWD];
    for (int i = 0; i < CROWD; i++) {
        uint16_t sport = (uint16_t)(59000 + i);
        segment(sport, 500, 0, TCP_SYN, NULL);
        struct tcp_pcb *x = find(sport);
        if (!x) return check_done("test_lwip_demux");
        segment(sport, 501, x->snd_nxt, TCP_ACK, NULL);
        segment(sport, 501, x->snd_nxt, TCP_ACK | TCP_FIN, NULL);
        app_close(x, NULL);
        crowd_ack[i] = x->snd_nxt;
    }
    active = count(tcp_active_pcbs);
    in_burst = 1;
    for (int i = 0; i < CROWD; i += 2)
        segment((uint16_t)(59000 + i), 502, crowd_ack[i], TCP_ACK, NULL);
    for (int i = CROWD - 1; i > 0; i -= 2)
        segment((uint16_t)(59000 + i), 502, crowd_ack[i], TCP_ACK, NULL);
    in_burst = 0;
    lwip_demux_flush(demux);
    int none = 1;
    for (int i = 0; i < CROWD; i++) none &= !find((uint16_t)(59000 + i));
    CHECK(none && count(tcp_active_pcbs) == active - CROWD && find(57100) && find(39999),
          "%d last ACKs in one burst: all unlinked, the list whole (%d)", CROWD,
          count(tcp_active_pcbs));

    /* a port that refuses frames (its backlog full): lwIP keeps the segment; the kick sends it
     * once the port takes frames again, not sooner than its interval */
    c = open_behind(60000);
    CHECK(c != NULL, "a connection to write to");
    if (!c) return check_done("test_lwip_demux");
    refuse_output = 1;
    tcp_write(c, "kept", 4, TCP_WRITE_FLAG_COPY);
    tcp_output(c);
    CHECK(refused && c->unsent, "a refused segment stays with lwIP, unsent");
    refuse_output = 0;
    int64_t last = 0;
    int before_kick = sent_segments;
    lwip_kick_unsent(&refused, LWIP_KICK_EVERY_NS / 2, &last);
    CHECK(refused && c->unsent && sent_segments == before_kick,
          "within the kick's interval: nothing sent yet");
    lwip_kick_unsent(&refused, LWIP_KICK_EVERY_NS, &last);
    CHECK(!refused && !c->unsent && c->unacked && sent_segments == before_kick + 1,
          "the kick: the kept segment sent (%d)", sent_segments - before_kick);
    lwip_kick_unsent(&refused, 3 * LWIP_KICK_EVERY_NS, &last);
    CHECK(sent_segments == before_kick + 1, "no refusal since: no kick");

    /* a TIME-WAIT pcb's last ACK refused: no lwIP timer retries it, the kick does; and a
     * second refused send, on an active pcb: a kick into a port that still refuses stops at
     * its first refusal */
    struct tcp_pcb *w = open_behind(62000);
    c = open_behind(61000);
    CHECK(c != NULL && w != NULL, "a connection to close into TIME-WAIT, one to write to");
    if (!c || !w) return check_done("test_lwip_demux");
    app_close(c, NULL);
    fin_next = c->snd_nxt;
    segment(61000, 501, fin_next, TCP_ACK, NULL);
    refuse_output = 1;
    segment(61000, 501, fin_next, TCP_ACK | TCP_FIN, NULL);
    CHECK(c->state == TIME_WAIT && refused && (c->flags & TF_ACK_NOW),
          "the peer's FIN into TIME-WAIT, its ACK refused: lwIP marks it to send");
    tcp_write(w, "kept", 4, TCP_WRITE_FLAG_COPY);
    tcp_output(w);
    int tries = attempts;
    lwip_kick_unsent(&refused, 5 * LWIP_KICK_EVERY_NS, &last);
    CHECK(refused && attempts == tries + 1,
          "a kick while the port refuses: one try, then it stops");
    refuse_output = 0;
    before_kick = sent_segments;
    last_tcp_flags = 0;
    lwip_kick_unsent(&refused, 7 * LWIP_KICK_EVERY_NS, &last);
    CHECK(!refused && sent_segments == before_kick + 2 && !(c->flags & TF_ACK_NOW) && !w->unsent,
          "the port takes frames again: the kick sends both, the TIME-WAIT ACK among them (%d)",
          sent_segments - before_kick);
    return check_done("test_lwip_demux");
}

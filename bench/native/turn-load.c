// TURN relay load generator for `npm run bench -- --only turn` (bench/lib/turn.ts): the
// same client for natkit's TurnServer and coturn's turnserver.
//
// throughput mode: one allocation (RFC 8656 §7, long-term credentials with MD5 key and
// MESSAGE-INTEGRITY, RFC 8489 §9.2), a permission for a peer socket of our own (§9), a
// channel 0x4000 (§11; natkit refuses RFC 5766's 0x4000–0x7FFF outside RFC 8656's
// 0x4000–0x4FFF), then a window of ChannelData datagrams (§12) — or Send indications with
// --send — to the peer, which echoes each back to the relayed address; the server relays
// the echo to us. One datagram crosses the server twice per round trip. Prints one JSON
// line: round trips/s, relayed datagrams/s, payload Mbit/s through the server, loss, RTTs.
//
// allocations mode: --allocations N allocations, one UDP socket each, one after another;
// prints {"allocated":n,...} and holds them until stdin ends (the orchestrator reads the
// server's RSS meanwhile).
//
// Build: cc -O2 -o turn-load turn-load.c -lcrypto
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x2112A442u
#define ATTR_USERNAME 0x0006
#define ATTR_MESSAGE_INTEGRITY 0x0008
#define ATTR_ERROR_CODE 0x0009
#define ATTR_CHANNEL_NUMBER 0x000C
#define ATTR_XOR_PEER_ADDRESS 0x0012
#define ATTR_DATA 0x0013
#define ATTR_REALM 0x0014
#define ATTR_NONCE 0x0015
#define ATTR_REQUESTED_TRANSPORT 0x0019
#define M_ALLOCATE 0x003
#define M_CREATE_PERMISSION 0x008
#define M_CHANNEL_BIND 0x009
#define T_SEND_INDICATION 0x0016
#define T_DATA_INDICATION 0x0017
#define CHANNEL 0x4000
#define BATCH 64
#define MAX_PKT 2048
#define HIST_US 200000

typedef struct { uint8_t b[MAX_PKT]; size_t n; } msg_t;

typedef struct {
  int fd;
  const char *user, *pass;
  char realm[256], nonce[512];
  uint8_t key[16];
  int authed;
} session_t;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "turn-load: %s: %s\n", what, errno ? strerror(errno) : "failed");
  exit(1);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void msg_start(msg_t *m, uint16_t type) {
  put16(m->b, type);
  put16(m->b + 2, 0);
  put32(m->b + 4, MAGIC);
  for (int i = 8; i < 20; i++) m->b[i] = (uint8_t)rand();
  m->n = 20;
}

static void attr(msg_t *m, uint16_t type, const void *v, size_t len) {
  put16(m->b + m->n, type);
  put16(m->b + m->n + 2, (uint16_t)len);
  memcpy(m->b + m->n + 4, v, len);
  size_t padded = (len + 3) & ~(size_t)3;
  memset(m->b + m->n + 4 + len, 0, padded - len);
  m->n += 4 + padded;
  put16(m->b + 2, (uint16_t)(m->n - 20));
}

static void attr_xor_peer(msg_t *m, const struct sockaddr_in *a) {
  uint8_t v[8] = {0, 1};
  put16(v + 2, ntohs(a->sin_port) ^ (MAGIC >> 16));
  put32(v + 4, ntohl(a->sin_addr.s_addr) ^ MAGIC);
  attr(m, ATTR_XOR_PEER_ADDRESS, v, 8);
}

/** USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (HMAC-SHA1 over the message so far, RFC 8489 §14.5). */
static void sign(msg_t *m, session_t *s) {
  attr(m, ATTR_USERNAME, s->user, strlen(s->user));
  attr(m, ATTR_REALM, s->realm, strlen(s->realm));
  attr(m, ATTR_NONCE, s->nonce, strlen(s->nonce));
  put16(m->b + 2, (uint16_t)(m->n - 20 + 24));
  uint8_t mac[20];
  unsigned len = 0;
  HMAC(EVP_sha1(), s->key, 16, m->b, m->n, mac, &len);
  attr(m, ATTR_MESSAGE_INTEGRITY, mac, 20);
}

/** The value of attribute `type` in a STUN message, or NULL. */
static const uint8_t *find_attr(const uint8_t *b, size_t n, uint16_t type, uint16_t *len) {
  size_t off = 20, end = 20 + get16(b + 2);
  if (end > n) return NULL;
  while (off + 4 <= end) {
    uint16_t t = get16(b + off), l = get16(b + off + 2);
    if (off + 4 + l > end) return NULL;
    if (t == type) { *len = l; return b + off + 4; }
    off += 4 + ((l + 3u) & ~3u);
  }
  return NULL;
}

static void copy_text(char *dst, size_t cap, const uint8_t *v, uint16_t len) {
  size_t n = len < cap - 1 ? len : cap - 1;
  memcpy(dst, v, n);
  dst[n] = 0;
}

/**
 * One request with `attrs` (attribute bytes after the header), signed once challenged:
 * 0 on success, the error code otherwise, -1 when no answer came (3 tries, 500 ms each).
 */
static int request(session_t *s, uint16_t method, const msg_t *attrs) {
  for (int round = 0; round < 3; round++) {
    msg_t m;
    msg_start(&m, method);
    memcpy(m.b + 20, attrs->b + 20, attrs->n - 20);
    m.n = attrs->n;
    put16(m.b + 2, (uint16_t)(m.n - 20));
    if (s->authed) sign(&m, s);
    uint8_t r[MAX_PKT];
    ssize_t got = -1;
    for (int tx = 0; tx < 3 && got < 0; tx++) {
      if (send(s->fd, m.b, m.n, 0) < 0) die("send");
      uint64_t deadline = now_ns() + 500000000u;
      while (got < 0) {
        int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
        if (left <= 0) break;
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t k = recv(s->fd, r, sizeof r, 0);
        if (k >= 20 && memcmp(r + 8, m.b + 8, 12) == 0 && (get16(r) & 0x3eef) == method) got = k;
      }
    }
    if (got < 0) return -1;
    if ((get16(r) & 0x0110) == 0x0100) return 0;
    uint16_t len = 0;
    const uint8_t *e = find_attr(r, (size_t)got, ATTR_ERROR_CODE, &len);
    int code = e != NULL && len >= 4 ? (e[2] & 7) * 100 + e[3] : 400;
    if ((code != 401 && code != 438) || round == 2) return code;
    const uint8_t *realm = find_attr(r, (size_t)got, ATTR_REALM, &len);
    if (realm != NULL) copy_text(s->realm, sizeof s->realm, realm, len);
    const uint8_t *nonce = find_attr(r, (size_t)got, ATTR_NONCE, &len);
    if (nonce == NULL) return code;
    copy_text(s->nonce, sizeof s->nonce, nonce, len);
    char text[1024];
    int tn = snprintf(text, sizeof text, "%s:%s:%s", s->user, s->realm, s->pass);
    unsigned kl = 0;
    EVP_Digest(text, (size_t)tn, s->key, &kl, EVP_md5(), NULL);
    s->authed = 1;
  }
  return -1;
}

static int udp_socket(const struct sockaddr_in *connect_to) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&any, sizeof any) < 0) die("bind");
  if (connect_to != NULL && connect(fd, (const struct sockaddr *)connect_to, sizeof *connect_to) < 0) die("connect");
  return fd;
}

/** Allocate, retried while the server says 508 (natkit refills its relay socket pool asynchronously). */
static int allocate(session_t *s) {
  msg_t a;
  a.n = 20;
  uint8_t udp[4] = {17, 0, 0, 0};
  attr(&a, ATTR_REQUESTED_TRANSPORT, udp, 4);
  int code = -1;
  for (int i = 0; i < 50; i++) {
    code = request(s, M_ALLOCATE, &a);
    if (code != 508) return code;
    usleep(20000);
  }
  return code;
}

typedef struct { uint32_t seq, round; uint64_t sent; int active; } slot_t;

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *user = "bench", *pass = "benchpass";
  int port = 3478, size = 100, window = 64, timeout_ms = 200, allocations = 0, use_send = 0;
  double duration_s = 3, warmup_s = 0.5;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--send")) { use_send = 1; continue; }
    if (!strcmp(a, "--host")) host = v;
    else if (!strcmp(a, "--port")) port = atoi(v);
    else if (!strcmp(a, "--user")) user = v;
    else if (!strcmp(a, "--pass")) pass = v;
    else if (!strcmp(a, "--size")) size = atoi(v);
    else if (!strcmp(a, "--window")) window = atoi(v);
    else if (!strcmp(a, "--timeout-ms")) timeout_ms = atoi(v);
    else if (!strcmp(a, "--duration-s")) duration_s = atof(v);
    else if (!strcmp(a, "--warmup-s")) warmup_s = atof(v);
    else if (!strcmp(a, "--allocations")) allocations = atoi(v);
    else { fprintf(stderr, "turn-load: unknown option %s\n", a); return 2; }
    i++;
  }
  if (size < 12 || size > 1400 || window < 1 || window > 65536 || allocations < 0 || allocations > 100000) {
    fprintf(stderr, "turn-load: --size 12–1400, --window 1–65536, --allocations 0–100000\n");
    return 2;
  }
  srand((unsigned)now_ns());
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &server.sin_addr) != 1) { fprintf(stderr, "turn-load: --host: IPv4 expected\n"); return 2; }

  if (allocations > 0) {
    int ok = 0, failed = 0, last = 0;
    uint64_t t0 = now_ns();
    for (int i = 0; i < allocations; i++) {
      session_t s = {.fd = udp_socket(&server), .user = user, .pass = pass};
      int code = allocate(&s);
      if (code == 0) ok++; else { failed++; last = code; close(s.fd); }
    }
    printf("{\"allocated\":%d,\"failed\":%d,\"last_error\":%d,\"seconds\":%.3f}\n", ok, failed, last, (double)(now_ns() - t0) / 1e9);
    fflush(stdout);
    char drain[256];
    while (read(0, drain, sizeof drain) > 0) {}
    return 0;
  }

  int peer = udp_socket(NULL);
  struct sockaddr_in peer_addr;
  socklen_t pl = sizeof peer_addr;
  getsockname(peer, (struct sockaddr *)&peer_addr, &pl);
  session_t s = {.fd = udp_socket(&server), .user = user, .pass = pass};
  int code = allocate(&s);
  if (code != 0) { fprintf(stderr, "turn-load: Allocate failed: %d\n", code); return 1; }
  msg_t p;
  p.n = 20;
  attr_xor_peer(&p, &peer_addr);
  if ((code = request(&s, M_CREATE_PERMISSION, &p)) != 0) { fprintf(stderr, "turn-load: CreatePermission failed: %d\n", code); return 1; }
  if (!use_send) {
    msg_t c;
    c.n = 20;
    uint8_t ch[4] = {CHANNEL >> 8, CHANNEL & 0xff, 0, 0};
    attr(&c, ATTR_CHANNEL_NUMBER, ch, 4);
    attr_xor_peer(&c, &peer_addr);
    if ((code = request(&s, M_CHANNEL_BIND, &c)) != 0) { fprintf(stderr, "turn-load: ChannelBind failed: %d\n", code); return 1; }
  }

  // The datagram we send: ChannelData or a Send indication, the payload at `off`.
  msg_t out;
  size_t off;
  uint8_t payload[1400] = {0};
  if (use_send) {
    msg_start(&out, T_SEND_INDICATION);
    attr_xor_peer(&out, &peer_addr);
    attr(&out, ATTR_DATA, payload, (size_t)size);
    off = out.n - ((size + 3u) & ~3u);
  } else {
    put16(out.b, CHANNEL);
    put16(out.b + 2, (uint16_t)size);
    out.n = 4 + (size_t)size;
    off = 4;
  }

  slot_t *slots = calloc((size_t)window, sizeof *slots);
  uint32_t *hist = calloc(HIST_US + 1, sizeof *hist);
  if (slots == NULL || hist == NULL) die("calloc");
  uint64_t start = now_ns(), measure_from = start + (uint64_t)(warmup_s * 1e9), measure_to = measure_from + (uint64_t)(duration_s * 1e9);
  uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000u, drain_to = measure_to + timeout_ns;
  uint64_t sent = 0, received = 0, lost = 0, late = 0, invalid = 0, send_errors = 0;
  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  static uint8_t bufs[BATCH][MAX_PKT];
  // Bounded in time: the loop ends at measure_to + the timeout.
  for (;;) {
    uint64_t now = now_ns();
    if (now >= drain_to) break;
    int busy = 0;
    // Top up the window (no new sends once the measured interval is over), expiring the overdue.
    for (int i = 0; i < window && now < measure_to; i++) {
      slot_t *sl = &slots[i];
      if (sl->active && now - sl->sent < timeout_ns) continue;
      if (sl->active && sl->sent >= measure_from) lost++;
      // Slot i carries the sequence numbers ≡ i (mod window): an answer finds its slot.
      sl->seq = ++sl->round * (uint32_t)window + (uint32_t)i;
      sl->sent = now;
      sl->active = 1;
      memcpy(out.b + off, &sl->seq, 4);
      memcpy(out.b + off + 4, &sl->sent, 8);
      if (use_send) memcpy(out.b + 8, &sl->seq, 4); // a fresh transaction ID
      if (send(s.fd, out.b, out.n, 0) < 0) { send_errors++; sl->active = 0; continue; }
      if (now >= measure_from) sent++;
      busy = 1;
    }
    // The peer echoes what the relay sent it back to the relayed address.
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){bufs[i], MAX_PKT};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int k = recvmmsg(peer, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (k > 0) {
      for (int i = 0; i < k; i++) iov[i].iov_len = msgs[i].msg_len;
      sendmmsg(peer, msgs, (unsigned)k, 0);
      busy = 1;
    }
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){bufs[i], MAX_PKT};
      msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    k = recvmmsg(s.fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    now = now_ns();
    for (int i = 0; i < k; i++) {
      const uint8_t *b = bufs[i];
      size_t n = msgs[i].msg_len;
      const uint8_t *data = NULL;
      uint16_t len = 0;
      if (n >= 4 && get16(b) == CHANNEL) { data = b + 4; len = get16(b + 2); if ((size_t)len + 4 > n) data = NULL; }
      else if (n >= 20 && get16(b) == T_DATA_INDICATION) data = find_attr(b, n, ATTR_DATA, &len);
      if (data == NULL || len < 12) { invalid++; continue; }
      uint32_t seq;
      uint64_t t;
      memcpy(&seq, data, 4);
      memcpy(&t, data + 4, 8);
      slot_t *sl = &slots[seq % (uint32_t)window];
      if (!sl->active || sl->seq != seq) { late++; continue; }
      sl->active = 0;
      if (t >= measure_from && t < measure_to) {
        received++;
        uint64_t us = (now - t) / 1000;
        hist[us > HIST_US ? HIST_US : us]++;
      }
    }
    if (k > 0) busy = 1;
    if (!busy) {
      struct pollfd pf[2] = {{s.fd, POLLIN, 0}, {peer, POLLIN, 0}};
      poll(pf, 2, 1);
    }
  }
  for (int i = 0; i < window; i++) if (slots[i].active && slots[i].sent >= measure_from && slots[i].sent < measure_to) lost++;
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  double pct[2] = {0.5, 0.99};
  uint32_t at[2] = {0, 0};
  for (int j = 0; j < 2; j++) {
    uint64_t want = (uint64_t)(pct[j] * (double)received), acc = 0;
    for (uint32_t us = 0; us <= HIST_US; us++) { acc += hist[us]; if (acc > want) { at[j] = us; break; } }
  }
  double rtps = (double)received / duration_s;
  printf("{\"mode\":\"%s\",\"size\":%d,\"window\":%d,\"duration_s\":%.3f,\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"late\":%llu,"
         "\"invalid\":%llu,\"send_errors\":%llu,\"round_trips_per_s\":%.1f,\"relayed_pps\":%.1f,\"relayed_mbps\":%.3f,\"loss_pct\":%.4f,"
         "\"p50_us\":%u,\"p99_us\":%u,\"generator_cpu_pct\":%.1f}\n",
         use_send ? "send" : "channel", size, window, duration_s, (unsigned long long)sent, (unsigned long long)received,
         (unsigned long long)lost, (unsigned long long)late, (unsigned long long)invalid, (unsigned long long)send_errors, rtps, 2 * rtps,
         2 * rtps * size * 8 / 1e6, sent == 0 ? 0.0 : 100.0 * (double)lost / (double)sent, at[0], at[1],
         100.0 * cpu / ((double)(now_ns() - start) / 1e9));
  return 0;
}

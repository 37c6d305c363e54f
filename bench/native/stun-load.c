// stun-load: a closed-loop STUN Binding load generator for loopback benchmarks.
//
// Keeps a window of W Binding requests (RFC 8489 §5, §6.1: class request, method
// Binding, magic cookie, unique 96-bit transaction ID) in flight over one connected
// UDP socket, batching with sendmmsg/recvmmsg. Each response is matched to its request
// by transaction ID and checked (success class, cookie, XOR-MAPPED-ADDRESS equal to our
// own address, RFC 8489 §14.2); latency is measured with CLOCK_MONOTONIC. A request not
// answered within the timeout is lost, and its slot carries a fresh request.
//
// Phases: warm-up (answers not counted), measured interval (requests sent in it are
// counted), drain (no new requests; wait at most one timeout for the counted ones).
// Every loop is bounded in time and in iterations. Only 127.0.0.0/8 targets are accepted.
// Prints one JSON object on stdout; errors go to stderr with exit code 1 (2 for usage).
//
// Build: cc -O2 -o stun-load stun-load.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC_COOKIE 0x2112a442u
#define BATCH 64
#define MAX_WINDOW 65536
#define REQ_MAX 28        /* header + FINGERPRINT */
#define RESP_MAX 1500
#define FINGERPRINT_XOR 0x5354554eu

struct slot {
  uint64_t sent_ns;   /* 0 when free */
  uint32_t gen;       /* bumped on every new request in this slot */
  uint8_t measured;   /* sent inside the measured interval */
};

struct options {
  const char *host;
  int port;
  double duration_s;
  double warmup_s;
  int window;
  int timeout_ms;
  int fingerprint;
  int sndrcv_buf;
  int spin_us;
};

struct results {
  uint64_t sent, received, lost, late, invalid, error_responses, send_errors, warmup_received;
  uint64_t sent_total, received_total;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static uint32_t get16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t get32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }

/* CRC-32 (ISO HDLC, as zlib) for FINGERPRINT, RFC 8489 §14.7. */
static uint32_t crc_table[256];
static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}
static uint32_t crc32_buf(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values, in microseconds. */
static double percentile_us(const uint32_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t rank = (size_t)(p * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1] / 1000.0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: stun-load --port N [--host 127.0.0.1] [--duration-s 3] [--warmup-s 0.5]\n"
          "                 [--window 128] [--timeout-ms 200] [--fingerprint] [--buf-bytes 4194304]\n");
}

static int parse_args(int argc, char **argv, struct options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--fingerprint") == 0) { o->fingerprint = 1; continue; }
    if (v == NULL) { fprintf(stderr, "stun-load: %s needs a value\n", a); return -1; }
    if (strcmp(a, "--host") == 0) o->host = v;
    else if (strcmp(a, "--port") == 0) o->port = atoi(v);
    else if (strcmp(a, "--duration-s") == 0) o->duration_s = atof(v);
    else if (strcmp(a, "--warmup-s") == 0) o->warmup_s = atof(v);
    else if (strcmp(a, "--window") == 0) o->window = atoi(v);
    else if (strcmp(a, "--timeout-ms") == 0) o->timeout_ms = atoi(v);
    else if (strcmp(a, "--buf-bytes") == 0) o->sndrcv_buf = atoi(v);
    else if (strcmp(a, "--spin-us") == 0) o->spin_us = atoi(v);
    else { fprintf(stderr, "stun-load: unknown option %s\n", a); return -1; }
    i++;
  }
  if (o->port < 1 || o->port > 65535) { fprintf(stderr, "stun-load: --port: expected 1-65535, got %d\n", o->port); return -1; }
  if (!(o->duration_s > 0 && o->duration_s <= 600)) { fprintf(stderr, "stun-load: --duration-s: expected 0-600\n"); return -1; }
  if (!(o->warmup_s >= 0 && o->warmup_s <= 60)) { fprintf(stderr, "stun-load: --warmup-s: expected 0-60\n"); return -1; }
  if (o->window < 1 || o->window > MAX_WINDOW) { fprintf(stderr, "stun-load: --window: expected 1-%d, got %d\n", MAX_WINDOW, o->window); return -1; }
  if (o->spin_us < 0 || o->spin_us > 1000000) { fprintf(stderr, "stun-load: --spin-us: expected 0-1000000, got %d\n", o->spin_us); return -1; }
  if (o->timeout_ms < 1 || o->timeout_ms > 4000) { fprintf(stderr, "stun-load: --timeout-ms: expected 1-4000, got %d\n", o->timeout_ms); return -1; }
  return 0;
}

int main(int argc, char **argv) {
  struct options o = { "127.0.0.1", 0, 3.0, 0.5, 128, 200, 0, 4 * 1024 * 1024, 0 };
  if (parse_args(argc, argv, &o) != 0) { usage(); return 2; }
  crc_init();

  struct sockaddr_in server = { 0 };
  server.sin_family = AF_INET;
  server.sin_port = htons((uint16_t)o.port);
  if (inet_pton(AF_INET, o.host, &server.sin_addr) != 1) { fprintf(stderr, "stun-load: --host: expected an IPv4 address, got %s\n", o.host); return 2; }
  if ((ntohl(server.sin_addr.s_addr) >> 24) != 127) { fprintf(stderr, "stun-load: --host: only loopback (127.0.0.0/8) is allowed, got %s\n", o.host); return 2; }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("stun-load: socket"); return 1; }
  if (o.sndrcv_buf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.sndrcv_buf, sizeof o.sndrcv_buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.sndrcv_buf, sizeof o.sndrcv_buf);
  }
  struct sockaddr_in local = { 0 };
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) { perror("stun-load: bind"); return 1; }
  if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) { perror("stun-load: connect"); return 1; }
  socklen_t local_len = sizeof local;
  getsockname(fd, (struct sockaddr *)&local, &local_len);
  /* What XOR-MAPPED-ADDRESS must say: our own address and port, XORed (RFC 8489 §14.2). */
  const uint32_t want_xport = ntohs(local.sin_port) ^ (MAGIC_COOKIE >> 16);
  const uint32_t want_xaddr = ntohl(local.sin_addr.s_addr) ^ MAGIC_COOKIE;

  uint32_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce) nonce = (uint32_t)now_ns() ^ (uint32_t)getpid();

  const int W = o.window;
  struct slot *slots = calloc((size_t)W, sizeof *slots);
  uint8_t (*req)[REQ_MAX] = calloc((size_t)W, REQ_MAX);
  /* Latency samples in ns; capacity bounded by what a window can complete at 20 µs/round trip. */
  size_t lat_cap = 1 << 20, lat_n = 0;
  const size_t lat_max = 200u * 1000u * 1000u;
  uint32_t *lat = malloc(lat_cap * sizeof *lat);
  int *pending = malloc((size_t)W * sizeof *pending); /* slots waiting to be (re)sent */
  if (!slots || !req || !lat || !pending) { fprintf(stderr, "stun-load: out of memory\n"); return 1; }
  const size_t req_len = o.fingerprint ? 28 : 20;

  static uint8_t rbuf[BATCH][RESP_MAX];
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
  memset(rmsg, 0, sizeof rmsg);
  memset(smsg, 0, sizeof smsg);
  for (int i = 0; i < BATCH; i++) {
    riov[i].iov_base = rbuf[i];
    riov[i].iov_len = RESP_MAX;
    rmsg[i].msg_hdr.msg_iov = &riov[i];
    rmsg[i].msg_hdr.msg_iovlen = 1;
    smsg[i].msg_hdr.msg_iov = &siov[i];
    smsg[i].msg_hdr.msg_iovlen = 1;
  }

  struct results r = { 0 };
  const uint64_t timeout_ns = (uint64_t)o.timeout_ms * 1000000ull;
  const uint64_t t0 = now_ns();
  const uint64_t warm_end = t0 + (uint64_t)(o.warmup_s * 1e9);
  const uint64_t meas_end = warm_end + (uint64_t)(o.duration_s * 1e9);
  const uint64_t hard_end = meas_end + timeout_ns + 50000000ull;
  /* Iteration bound: generous (one iteration per 100 ns of run time), never reached in practice. */
  const uint64_t max_iters = (hard_end - t0) / 100 + 1000000;
  uint64_t next_scan = t0;
  uint64_t idle_since = 0;
  const uint64_t spin_ns = (uint64_t)o.spin_us * 1000ull;
  uint64_t measured_busy = 0;
  int npending = 0;
  for (int i = 0; i < W; i++) pending[npending++] = i;

  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);

  uint64_t iter = 0;
  for (; iter < max_iters; iter++) {
    uint64_t now = now_ns();
    if (now >= hard_end) break;
    if (now >= meas_end && measured_busy == 0) break;

    /* Send every pending slot (only while the measured interval lasts). */
    while (npending > 0 && now < meas_end) {
      int n = npending < BATCH ? npending : BATCH;
      for (int k = 0; k < n; k++) {
        int s = pending[npending - n + k];
        struct slot *sl = &slots[s];
        sl->gen++;
        uint8_t *p = req[s];
        put16(p, 0x0001);                 /* Binding request */
        put16(p + 2, (uint32_t)req_len - 20);
        put32(p + 4, MAGIC_COOKIE);
        put32(p + 8, nonce);              /* transaction ID: nonce | slot | generation */
        put32(p + 12, (uint32_t)s);
        put32(p + 16, sl->gen);
        if (o.fingerprint) {
          put16(p + 20, 0x8028);
          put16(p + 22, 4);
          put32(p + 24, crc32_buf(p, 20) ^ FINGERPRINT_XOR);
        }
        siov[k].iov_base = p;
        siov[k].iov_len = req_len;
      }
      uint64_t ts = now_ns();
      int sent = sendmmsg(fd, smsg, (unsigned)n, 0);
      if (sent < 0) {
        r.send_errors++;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED && errno != ENOBUFS) { perror("stun-load: sendmmsg"); return 1; }
        break; /* retry on the next iteration */
      }
      for (int k = 0; k < sent; k++) {
        int s = pending[npending - n + k];
        struct slot *sl = &slots[s];
        sl->sent_ns = ts;
        sl->measured = ts >= warm_end && ts < meas_end;
        if (sl->measured) { r.sent++; measured_busy++; }
        r.sent_total++;
      }
      /* Unsent ones (partial batch) stay pending, moved to the bottom of the stack. */
      if (sent < n) {
        memmove(&pending[npending - n], &pending[npending - n + sent], (size_t)(n - sent) * sizeof *pending);
        npending -= sent;
        break;
      }
      npending -= n;
    }

    /* Receive what is there; wait at most 1 ms when nothing is. */
    int got = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno == ECONNREFUSED) { r.send_errors++; }
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { perror("stun-load: recvmmsg"); return 1; }
      got = 0;
      /* Busy-poll for up to spin_us before sleeping in poll(): the generator has its own core,
         and a sleep/wake-up per datagram (an IPI on loopback) costs more than the spin. */
      if (npending == 0 || now >= meas_end) {
        if (idle_since == 0) idle_since = now;
        if (now - idle_since >= spin_ns) {
          struct pollfd pfd = { fd, POLLIN, 0 };
          poll(&pfd, 1, 1);
        }
      }
    } else {
      idle_since = 0;
    }
    uint64_t trecv = got > 0 ? now_ns() : 0;
    for (int k = 0; k < got; k++) {
      const uint8_t *p = rbuf[k];
      size_t len = rmsg[k].msg_len;
      r.received_total++;
      if (len < 20 || get32(p + 4) != MAGIC_COOKIE || get32(p + 8) != nonce || get16(p + 2) + 20u != len) { r.invalid++; continue; }
      uint32_t s = get32(p + 12), gen = get32(p + 16);
      if (s >= (uint32_t)W) { r.invalid++; continue; }
      struct slot *sl = &slots[s];
      if (sl->sent_ns == 0 || sl->gen != gen) { r.late++; continue; } /* answered after its timeout */
      uint32_t type = get16(p);
      int ok = 0;
      if (type == 0x0101) {
        /* Find XOR-MAPPED-ADDRESS (0x0020) and check it names us. */
        size_t off = 20;
        while (off + 4 <= len) {
          uint32_t at = get16(p + off), al = get16(p + off + 2);
          if (off + 4 + al > len) break;
          if (at == 0x0020 && al == 8 && p[off + 5] == 0x01) {
            ok = get16(p + off + 6) == want_xport && get32(p + off + 8) == want_xaddr;
            break;
          }
          off += 4 + ((al + 3) & ~3u);
        }
      }
      if (!ok) {
        if (type == 0x0111) r.error_responses++;
        else r.invalid++;
      } else if (sl->measured) {
        r.received++;
        if (lat_n == lat_cap && lat_cap < lat_max) {
          size_t cap = lat_cap * 2 < lat_max ? lat_cap * 2 : lat_max;
          uint32_t *grown = realloc(lat, cap * sizeof *lat);
          if (grown) { lat = grown; lat_cap = cap; }
        }
        uint64_t d = trecv - sl->sent_ns;
        if (lat_n < lat_cap) lat[lat_n++] = d > 0xffffffffull ? 0xffffffffu : (uint32_t)d;
      } else {
        r.warmup_received++;
      }
      if (sl->measured) measured_busy--;
      sl->sent_ns = 0;
      sl->measured = 0;
      pending[npending++] = (int)s;
    }

    /* Expire requests older than the timeout, at most once a millisecond. */
    if (now >= next_scan) {
      next_scan = now + 1000000ull;
      for (int s = 0; s < W; s++) {
        struct slot *sl = &slots[s];
        /* sent_ns may be later than `now` (sent in this iteration): compare without subtracting. */
        if (sl->sent_ns == 0 || sl->sent_ns + timeout_ns > now) continue;
        if (sl->measured) { r.lost++; measured_busy--; }
        sl->sent_ns = 0;
        sl->measured = 0;
        pending[npending++] = s;
      }
    }
  }
  /* Anything still out when the drain ended counts as lost. */
  for (int s = 0; s < W; s++) if (slots[s].sent_ns != 0 && slots[s].measured) r.lost++;

  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  double wall_s = (double)(now_ns() - t0) / 1e9;

  qsort(lat, lat_n, sizeof *lat, cmp_u32);
  double mean = 0;
  for (size_t i = 0; i < lat_n; i++) mean += lat[i];
  mean = lat_n ? mean / (double)lat_n / 1000.0 : 0;

  printf("{\"generator\":\"c\",\"window\":%d,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"timeout_ms\":%d,\"fingerprint\":%s,"
         "\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"late\":%llu,\"invalid\":%llu,\"error_responses\":%llu,\"send_errors\":%llu,"
         "\"rps\":%.1f,\"loss_pct\":%.4f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
         "\"samples\":%zu,\"generator_cpu_pct\":%.1f,\"iterations\":%llu,\"hit_iteration_bound\":%s}\n",
         W, o.duration_s, o.warmup_s, o.timeout_ms, o.fingerprint ? "true" : "false",
         (unsigned long long)r.sent, (unsigned long long)r.received, (unsigned long long)r.lost, (unsigned long long)r.late,
         (unsigned long long)r.invalid, (unsigned long long)r.error_responses, (unsigned long long)r.send_errors,
         (double)r.received / o.duration_s, r.sent ? 100.0 * (double)r.lost / (double)r.sent : 0.0,
         percentile_us(lat, lat_n, 0.50), percentile_us(lat, lat_n, 0.90), percentile_us(lat, lat_n, 0.99),
         percentile_us(lat, lat_n, 0.999), lat_n ? lat[lat_n - 1] / 1000.0 : 0.0, mean,
         lat_n, wall_s > 0 ? 100.0 * cpu_s / wall_s : 0.0, (unsigned long long)iter, iter >= max_iters ? "true" : "false");
  free(slots);
  free(req);
  free(lat);
  free(pending);
  close(fd);
  return 0;
}

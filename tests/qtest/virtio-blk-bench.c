/*
 * virtio-blk load generator for benchmarks
 *
 * Drives a virtio-blk-pci device with an iothread through qtest, the way
 * a guest driver does, but without a guest: it keeps a fixed number of
 * requests in flight, publishes new ones in batches on the avail ring,
 * notifies the device only when the device asks for it (EVENT_IDX or
 * VRING_USED_F_NO_NOTIFY), polls the used ring and refills as requests
 * complete. Every completion must come back once, with the right length
 * and an OK status byte.
 *
 * It measures what the device costs per request on the host: requests
 * per second, CPU time per request of the iothread, of the main loop and
 * of all QEMU's threads (from /proc), requests per notification and,
 * outside the timed phase, system calls per request (strace). It is not
 * a test: meson builds it but never runs it, and it is not part of
 * qos-test.
 *
 * Usage: QTEST_QEMU_BINARY=qemu-system-x86_64 virtio-blk-bench [OPTION...]
 * Results go to stdout, one "<metric> <value> <unit>" per line.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <dirent.h>
#include <sys/wait.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "virtio-blk-ring.h"

#define SECTOR_SIZE         512
#define IOTHREAD_ID         "iot0"
#define IOTHREAD_COMM       "IO " IOTHREAD_ID
#define DEVICE_SLOT         4
#define HDR_SIZE            16
/* Per request: the 16-byte header, the status byte, a DISCARD's range */
#define STATUS_OFF          16
#define DWZ_OFF             32
#define CTL_STRIDE          48
#define STATUS_UNSET        0xff

typedef enum Workload {
    WORKLOAD_RANDREAD,
    WORKLOAD_SEQWRITE,
    WORKLOAD_RANDRW,
} Workload;

typedef struct BenchOptions {
    Workload workload;
    int qd;
    int64_t requests;
    int64_t warmup;
    int block_size;
    int segments;
    int read_pct;
    int flush_every;
    int discard_pct;
    bool shm;
    const char *shm_dir;
    int64_t size;
    int64_t poll_max_ns;
    bool direct;
    bool no_event_idx;
    uint64_t seed;
    int timeout_s;
    int64_t syscall_requests;
    const char *device_props;   /* more virtio-blk-pci properties, or "" */
} BenchOptions;

/* The descriptor chains of a slot; FLUSH and DISCARD carry no data */
typedef enum Chain {
    CHAIN_DATA,                 /* header, data segments, status */
    CHAIN_FLUSH,                /* header, status */
    CHAIN_DISCARD,              /* header, range, status */
    CHAIN__MAX,
} Chain;

typedef struct Slot {
    uint32_t head[CHAIN__MAX];  /* first ring descriptor of each chain */
    uint64_t data_desc;         /* guest address of the first data segment */
    uint32_t data_type;         /* direction of the data segments */
    uint32_t type;              /* type of the request in flight */
    Chain chain;                /* the chain in flight */
    bool busy;
} Slot;

typedef struct Bench {
    const BenchOptions *opts;
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    QVirtioPCIDevice *pdev;
    QVirtioDevice *vdev;
    QVirtQueue *vq;
    bool event_idx;

    Slot *slots;
    int *free_slots;            /* idle slots, oldest first */
    int free_head;
    int nfree;
    int *slot_of_head;          /* ring descriptor -> slot, or -1 */
    int *batch;                 /* slots not yet on the avail ring */
    int nbatch;
    uint16_t *ring_buf;         /* the heads of a batch */
    struct vring_used_elem *used_buf;
    uint64_t ctl;               /* guest address of headers and statuses */
    uint8_t *ctl_copy;          /* the driver's copy of them */
    uint64_t data;              /* guest address of the data buffers */

    uint64_t sectors;           /* disk size */
    uint64_t next_sector;       /* sequential workload */
    uint64_t rng;
    int writes_since_flush;

    uint64_t submitted;
    uint64_t completed;
    uint64_t kicks;
} Bench;

typedef struct ThreadCPU {
    int tid;
    uint64_t ns;                /* CPU time so far, from schedstat */
} ThreadCPU;

/* A slot's descriptor as bench_add_chain() puts it on the ring */
typedef struct BenchDesc {
    uint64_t addr;
    uint32_t len;
    bool write;                 /* device-writable */
} BenchDesc;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void G_GNUC_PRINTF(1, 2) G_NORETURN die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "virtio-blk-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* --- QEMU's threads, seen from /proc ----------------------------------- */

static GArray *thread_ids(pid_t pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", pid);
    GArray *tids = g_array_new(FALSE, FALSE, sizeof(int));
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        die("cannot open %s: %s", dir, strerror(errno));
    }
    while ((e = readdir(d))) {
        int tid = atoi(e->d_name);

        if (tid > 0) {
            g_array_append_val(tids, tid);
        }
    }
    closedir(d);
    return tids;
}

/* Contents of /proc/PID/task/TID/NAME, or NULL if the thread is gone */
static char *thread_file(pid_t pid, int tid, const char *name)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/%s",
                                            pid, tid, name);
    char *text = NULL;

    g_file_get_contents(path, &text, NULL, NULL);
    return text;
}

static int find_thread(pid_t pid, const char *comm)
{
    g_autoptr(GArray) tids = thread_ids(pid);
    guint i;

    for (i = 0; i < tids->len; i++) {
        int tid = g_array_index(tids, int, i);
        g_autofree char *name = thread_file(pid, tid, "comm");

        if (name && strcmp(g_strchomp(name), comm) == 0) {
            return tid;
        }
    }
    return -1;
}

static GArray *cpu_snapshot(pid_t pid)
{
    g_autoptr(GArray) tids = thread_ids(pid);
    GArray *cpu = g_array_new(FALSE, FALSE, sizeof(ThreadCPU));
    guint i;

    for (i = 0; i < tids->len; i++) {
        ThreadCPU t = { .tid = g_array_index(tids, int, i) };
        g_autofree char *sched = thread_file(pid, t.tid, "schedstat");

        if (sched) {
            t.ns = g_ascii_strtoull(sched, NULL, 10);
            g_array_append_val(cpu, t);
        }
    }
    return cpu;
}

/*
 * CPU time of thread @tid, or of all threads if @tid is -1, between two
 * snapshots. A thread started in between counts from zero; one that
 * ended in between is missing (QEMU starts none in steady state).
 */
static uint64_t cpu_delta(GArray *t0, GArray *t1, int tid)
{
    uint64_t sum = 0;
    guint i, j;

    for (i = 0; i < t1->len; i++) {
        ThreadCPU *after = &g_array_index(t1, ThreadCPU, i);
        uint64_t before = 0;

        if (tid >= 0 && after->tid != tid) {
            continue;
        }
        for (j = 0; j < t0->len; j++) {
            if (g_array_index(t0, ThreadCPU, j).tid == after->tid) {
                before = g_array_index(t0, ThreadCPU, j).ns;
            }
        }
        sum += after->ns - before;
    }
    return sum;
}

/* Wait until @tracer has attached to every thread of @pid. */
static void wait_traced(pid_t pid, GPid tracer)
{
    g_autofree char *want = g_strdup_printf("\nTracerPid:\t%d\n", tracer);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    for (;;) {
        g_autoptr(GArray) tids = thread_ids(pid);
        bool all = true;
        guint i;

        for (i = 0; i < tids->len; i++) {
            g_autofree char *status =
                thread_file(pid, g_array_index(tids, int, i), "status");

            all &= !status || strstr(status, want);
        }
        if (all) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            die("strace did not attach to every thread of process %d", pid);
        }
        g_usleep(10 * 1000);
    }
}

/* --- the device --------------------------------------------------------- */

static char *backend_args(const BenchOptions *o, char **shm_path)
{
    g_autofree char *tmpl = NULL;
    const char *cache = "none";
    int fd;

    *shm_path = NULL;
    if (!o->shm) {
        return g_strdup_printf("driver=null-co,size=%" PRId64
                               ",read-zeroes=off", o->size);
    }

    tmpl = g_strdup_printf("%s/virtio-blk-bench.XXXXXX", o->shm_dir);
    fd = g_mkstemp(tmpl);
    if (fd < 0) {
        die("cannot create a file in %s: %s", o->shm_dir, strerror(errno));
    }
    /* allocate every block now, so that writes do not measure tmpfs */
    if (fallocate(fd, 0, 0, o->size) < 0) {
        unlink(tmpl);
        die("cannot allocate %" PRId64 " bytes in %s: %s", o->size, tmpl,
            strerror(errno));
    }
    close(fd);

    /* tmpfs takes O_DIRECT since Linux 6.6 */
    fd = open(tmpl, O_RDWR | O_DIRECT);
    if (fd < 0) {
        cache = "writeback";
    } else {
        close(fd);
    }
    fprintf(stderr, "# backend: %s, raw, aio=io_uring, cache=%s\n",
            tmpl, cache);
    /* a result too: a fallback to the page cache changes what is measured */
    printf("cache %s\n", cache);

    *shm_path = g_steal_pointer(&tmpl);
    return g_strdup_printf("file=%s,format=raw,aio=io_uring,cache=%s",
                           *shm_path, cache);
}

static void bench_start_qemu(Bench *b, char **shm_path)
{
    const BenchOptions *o = b->opts;
    g_autofree char *backend = backend_args(o, shm_path);
    g_autofree char *poll = o->poll_max_ns < 0 ? g_strdup("") :
        g_strdup_printf(",poll-max-ns=%" PRId64, o->poll_max_ns);
    /* without it the block layer drops DISCARDs before the driver */
    const char *unmap = o->discard_pct ? ",discard=unmap" : "";
    g_autofree char *props = *o->device_props ?
        g_strdup_printf(",%s", o->device_props) : g_strdup("");
    int out = dup(STDOUT_FILENO);

    /* libqtest logs the command line to stdout, which is for results */
    fflush(stdout);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    b->qts = qtest_initf("-M pc -nodefaults -name debug-threads=on "
                         "-object iothread,id=" IOTHREAD_ID "%s "
                         "-drive if=none,id=drive0,%s%s "
                         "-device virtio-blk-pci,drive=drive0,"
                         "iothread=" IOTHREAD_ID ",num-queues=1,"
                         "addr=%02x.0%s",
                         poll, backend, unmap, DEVICE_SLOT, props);
    fflush(stdout);
    dup2(out, STDOUT_FILENO);
    close(out);
}

/*
 * Negotiate the features of a Linux guest that matter on this path.
 * FLUSH does: without it the device turns its write cache off.
 */
static void bench_start_device(Bench *b)
{
    const BenchOptions *o = b->opts;
    QPCIAddress addr = { .devfn = QPCI_DEVFN(DEVICE_SLOT, 0) };
    uint64_t wanted = (1ull << VIRTIO_F_VERSION_1) |
                      (1ull << VIRTIO_BLK_F_SEG_MAX) |
                      (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                      (1ull << VIRTIO_BLK_F_FLUSH) |
                      (1ull << VIRTIO_BLK_F_TOPOLOGY);
    uint64_t features;

    if (!o->direct) {
        wanted |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    }
    if (!o->no_event_idx) {
        wanted |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    }
    if (o->discard_pct) {
        wanted |= 1ull << VIRTIO_BLK_F_DISCARD;
    }

    pc_alloc_init(&b->alloc, b->qts, ALLOC_NO_FLAGS);
    b->bus = qpci_new_pc(b->qts, &b->alloc);
    b->pdev = virtio_pci_new(b->bus, &addr);
    g_assert_nonnull(b->pdev);
    b->vdev = &b->pdev->vdev;
    g_assert_cmpint(b->vdev->device_type, ==, VIRTIO_ID_BLOCK);

    qvirtio_pci_device_enable(b->pdev);
    qvirtio_start_device(b->vdev);
    features = qvirtio_get_features(b->vdev);
    if ((features & wanted) != wanted) {
        die("the device lacks features 0x%" PRIx64, wanted & ~features);
    }
    qvirtio_set_features(b->vdev, wanted);
    b->event_idx = wanted & (1ull << VIRTIO_RING_F_EVENT_IDX);

    g_assert_cmpuint(qvirtio_config_readq(b->vdev, 0), ==,
                     o->size / SECTOR_SIZE);
    b->sectors = o->size / SECTOR_SIZE;

    b->vq = qvirtqueue_setup(b->vdev, &b->alloc, 0);
    qvirtio_set_driver_ok(b->vdev);
}

/*
 * Put a chain on the ring, in the ring itself or as an indirect table,
 * as slot @slot's @chain. Returns the guest address of its first
 * descriptor.
 */
static uint64_t bench_add_chain(Bench *b, int slot, Chain chain,
                                const BenchDesc *d, int n)
{
    uint64_t table;
    uint32_t head;
    int i;

    if (b->opts->direct) {
        /* libqos takes ring descriptors in order, each linked to the next */
        head = b->vq->free_head;
        for (i = 0; i < n; i++) {
            qvirtqueue_add(b->qts, b->vq, d[i].addr, d[i].len, d[i].write,
                           i < n - 1);
        }
        table = b->vq->desc + 16 * head;
    } else {
        QVRingIndirectDesc *ind =
            qvring_indirect_desc_setup(b->qts, b->vdev, &b->alloc, n);

        for (i = 0; i < n; i++) {
            qvring_indirect_desc_add(b->vdev, b->qts, ind, d[i].addr,
                                     d[i].len, d[i].write);
        }
        table = ind->desc;
        head = qvirtqueue_add_indirect(b->qts, b->vq, ind);
        g_free(ind);
    }
    b->slots[slot].head[chain] = head;
    b->slot_of_head[head] = slot;
    return table;
}

/*
 * Each slot is one request buffer with fixed descriptor chains, set up
 * once: header, data segments, status, either directly in the ring or in
 * an indirect table (as Linux does for any request of more than one
 * segment); FLUSH and DISCARD, when the workload has them, get chains of
 * their own without data, as Linux sends them. A completed chain is made
 * available again as it is; only the header, the status byte, a
 * DISCARD's range and, when the direction changes, the data segments'
 * flags are written per request.
 */
static void bench_setup_slots(Bench *b)
{
    const BenchOptions *o = b->opts;
    int seg_len = o->block_size / o->segments;
    g_autofree BenchDesc *d = g_new(BenchDesc, o->segments + 2);
    int ring_descs = o->direct ? o->segments + 2 : 1;
    uint64_t data_area;
    int i, k;

    if (o->flush_every) {
        ring_descs += o->direct ? 2 : 1;
    }
    if (o->discard_pct) {
        ring_descs += o->direct ? 3 : 1;
    }
    if (ring_descs * o->qd > b->vq->size) {
        die("queue depth %d does not fit a ring of %u", o->qd, b->vq->size);
    }

    b->slots = g_new0(Slot, o->qd);
    b->free_slots = g_new(int, o->qd);
    b->slot_of_head = g_new(int, b->vq->size);
    b->batch = g_new(int, o->qd);
    b->ring_buf = g_new(uint16_t, o->qd);
    b->used_buf = g_new(struct vring_used_elem, o->qd);
    b->ctl_copy = g_malloc0(o->qd * CTL_STRIDE);
    memset(b->slot_of_head, -1, sizeof(int) * b->vq->size);

    b->ctl = guest_alloc(&b->alloc, o->qd * CTL_STRIDE);
    /* data buffers aligned like a guest's pages, so O_DIRECT needs no copy */
    data_area = guest_alloc(&b->alloc, (uint64_t)o->qd * o->block_size +
                            o->block_size);
    b->data = ROUND_UP(data_area, o->block_size);

    for (i = 0; i < o->qd; i++) {
        Slot *s = &b->slots[i];
        uint64_t hdr = b->ctl + i * CTL_STRIDE;
        uint64_t data = b->data + (uint64_t)i * o->block_size;
        BenchDesc status = { hdr + STATUS_OFF, 1, true };

        d[0] = (BenchDesc) { hdr, HDR_SIZE, false };
        /* created as reads; bench_submit() flips the data direction */
        for (k = 0; k < o->segments; k++) {
            d[1 + k] = (BenchDesc) { data + k * seg_len, seg_len, true };
        }
        d[1 + o->segments] = status;
        s->data_desc = bench_add_chain(b, i, CHAIN_DATA, d,
                                       o->segments + 2) + 16;
        s->data_type = VIRTIO_BLK_T_IN;
        if (o->flush_every) {
            d[1] = status;
            bench_add_chain(b, i, CHAIN_FLUSH, d, 2);
        }
        if (o->discard_pct) {
            d[1] = (BenchDesc) {
                hdr + DWZ_OFF, sizeof(struct virtio_blk_discard_write_zeroes),
                false
            };
            d[2] = status;
            bench_add_chain(b, i, CHAIN_DISCARD, d, 3);
        }
        b->free_slots[b->nfree++] = i;
    }
}

/* Slots are reused in the order they complete. */
static int bench_get_slot(Bench *b)
{
    int i = b->free_slots[b->free_head];

    b->free_head = (b->free_head + 1) % b->opts->qd;
    b->nfree--;
    return i;
}

static void bench_put_slot(Bench *b, int i)
{
    b->free_slots[(b->free_head + b->nfree) % b->opts->qd] = i;
    b->nfree++;
}

static void bench_submit(Bench *b, uint32_t type, uint64_t sector)
{
    const BenchOptions *o = b->opts;
    int i = bench_get_slot(b);
    Slot *s = &b->slots[i];
    uint8_t *ctl = b->ctl_copy + i * CTL_STRIDE;
    int k;

    switch (type) {
    case VIRTIO_BLK_T_FLUSH:
        s->chain = CHAIN_FLUSH;
        break;
    case VIRTIO_BLK_T_DISCARD:
        /* the range is in the payload; the header's sector is unused */
        s->chain = CHAIN_DISCARD;
        stq_le_p(ctl + DWZ_OFF, sector);
        stl_le_p(ctl + DWZ_OFF + 8, o->block_size / SECTOR_SIZE);
        stl_le_p(ctl + DWZ_OFF + 12, 0);        /* flags */
        sector = 0;
        break;
    default:
        s->chain = CHAIN_DATA;
        if (s->data_type != type) {
            uint16_t flags = VRING_DESC_F_NEXT;

            if (type == VIRTIO_BLK_T_IN) {
                flags |= VRING_DESC_F_WRITE;
            }
            for (k = 0; k < o->segments; k++) {
                qtest_writew(b->qts, s->data_desc + 16 * k + 12, flags);
            }
            s->data_type = type;
        }
    }

    stl_le_p(ctl, type);
    stl_le_p(ctl + 4, 0);               /* ioprio */
    stq_le_p(ctl + 8, sector);
    ctl[STATUS_OFF] = STATUS_UNSET;

    s->type = type;
    s->busy = true;
    b->batch[b->nbatch++] = i;
}

static void bench_next_request(Bench *b)
{
    const BenchOptions *o = b->opts;
    uint64_t blocks = b->sectors * SECTOR_SIZE / o->block_size;
    uint64_t per_block = o->block_size / SECTOR_SIZE;
    uint32_t type = VIRTIO_BLK_T_IN;
    uint64_t sector;

    if (o->flush_every && b->writes_since_flush == o->flush_every) {
        b->writes_since_flush = 0;
        bench_submit(b, VIRTIO_BLK_T_FLUSH, 0);
        return;
    }
    if (o->discard_pct && rng_next(&b->rng) % 100 < o->discard_pct) {
        bench_submit(b, VIRTIO_BLK_T_DISCARD,
                     rng_next(&b->rng) % blocks * per_block);
        return;
    }

    switch (o->workload) {
    case WORKLOAD_SEQWRITE:
        type = VIRTIO_BLK_T_OUT;
        sector = b->next_sector;
        b->next_sector += per_block;
        if (b->next_sector + per_block > b->sectors) {
            b->next_sector = 0;
        }
        break;
    case WORKLOAD_RANDRW:
        if (rng_next(&b->rng) % 100 >= o->read_pct) {
            type = VIRTIO_BLK_T_OUT;
        }
        /* fall through */
    case WORKLOAD_RANDREAD:
    default:
        sector = rng_next(&b->rng) % blocks * per_block;
        break;
    }
    if (type == VIRTIO_BLK_T_OUT) {
        b->writes_since_flush++;
    }
    bench_submit(b, type, sector);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/*
 * Write the batch's headers and status bytes, then put its heads on the
 * avail ring with one avail->idx update and notify the device if it
 * asked to be (vbr_publish()).
 */
static void bench_publish(Bench *b)
{
    uint16_t *heads = b->ring_buf;
    int i, run;

    /* the order on the ring is free; this one needs fewer writes */
    qsort(b->batch, b->nbatch, sizeof(b->batch[0]), cmp_int);
    for (i = 0; i < b->nbatch; i += run) {
        int first = b->batch[i];

        for (run = 1; i + run < b->nbatch &&
                      b->batch[i + run] == first + run; run++) {
            /* neighbouring slots go in one write */
        }
        qtest_memwrite(b->qts, b->ctl + first * CTL_STRIDE,
                       b->ctl_copy + first * CTL_STRIDE, run * CTL_STRIDE);
    }

    for (i = 0; i < b->nbatch; i++) {
        Slot *s = &b->slots[b->batch[i]];

        heads[i] = s->head[s->chain];
    }
    if (vbr_publish(b->qts, b->vq, heads, b->nbatch)) {
        b->kicks++;
    }
    b->submitted += b->nbatch;
    b->nbatch = 0;
}

/*
 * Take what the device has used: every head must be one in flight, with
 * the length the device writes (data and status for a read, the status
 * alone otherwise) and status OK. Returns the number of completions.
 */
static int bench_reap(Bench *b)
{
    const BenchOptions *o = b->opts;
    QVirtQueue *vq = b->vq;
    uint16_t used_idx = qtest_readw(b->qts, vq->used + 2);
    uint16_t n = used_idx - vq->last_used_idx;
    struct vring_used_elem *elems = b->used_buf;
    int i, run;

    if (n == 0) {
        return 0;
    }
    if (n > o->qd) {
        die("the device used %u requests with %d in flight", n, o->qd);
    }
    for (i = 0; i < n; i += run) {
        uint32_t pos = (uint16_t)(vq->last_used_idx + i) % vq->size;

        run = MIN(n - i, vq->size - pos);
        qtest_memread(b->qts, vq->used + 4 + sizeof(elems[0]) * pos,
                      &elems[i], sizeof(elems[0]) * run);
    }
    qtest_memread(b->qts, b->ctl, b->ctl_copy, o->qd * CTL_STRIDE);

    for (i = 0; i < n; i++) {
        uint32_t head = le32_to_cpu(elems[i].id);
        uint32_t len = le32_to_cpu(elems[i].len);
        int si = head < vq->size ? b->slot_of_head[head] : -1;
        Slot *s = si >= 0 ? &b->slots[si] : NULL;
        uint32_t want_len;
        uint8_t status;

        if (!s || !s->busy || s->head[s->chain] != head) {
            die("the device used head %u, which is not in flight", head);
        }
        want_len = s->type == VIRTIO_BLK_T_IN ? o->block_size + 1 : 1;
        if (len != want_len) {
            die("head %u used with length %u, expected %u",
                head, len, want_len);
        }
        status = b->ctl_copy[si * CTL_STRIDE + STATUS_OFF];
        if (status != VIRTIO_BLK_S_OK) {
            die("request %" PRIu64 " (head %u) completed with status %u",
                b->completed, head, status);
        }
        s->busy = false;
        bench_put_slot(b, si);
        b->completed++;
    }
    vq->last_used_idx = used_idx;

    /* like an interrupt-driven driver: notify me on the next completion */
    if (b->event_idx) {
        qtest_writew(b->qts, vq->avail + 4 + 2 * vq->size, used_idx);
    }
    return n;
}

/* Complete @nreqs requests, keeping the queue depth full meanwhile. */
static void bench_run(Bench *b, int64_t nreqs)
{
    uint64_t to_submit = nreqs;
    uint64_t target = b->completed + nreqs;

    while (b->completed < target) {
        gint64 deadline;

        while (b->nfree && to_submit) {
            bench_next_request(b);
            to_submit--;
        }
        if (b->nbatch) {
            bench_publish(b);
        }
        deadline = g_get_monotonic_time() +
                   (gint64)b->opts->timeout_s * G_USEC_PER_SEC;
        while (!bench_reap(b)) {
            if (g_get_monotonic_time() > deadline) {
                die("no completion in %d s (%" PRIu64 " of %" PRIu64
                    " done)", b->opts->timeout_s, b->completed, target);
            }
        }
    }
}

/*
 * System calls per request of the iothread, of the main loop and of all
 * QEMU's threads, counted by strace over @nreqs more requests. Tracing
 * stops a thread at every call, so this runs after the timed phase.
 */
static void bench_count_syscalls(Bench *b, pid_t pid, int tid,
                                 int64_t nreqs)
{
    g_autofree char *log = NULL;
    g_autofree char *pid_arg = g_strdup_printf("%d", pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GError) err = NULL;
    char *argv[] = {
        (char *)"strace", (char *)"-f", (char *)"-qq", (char *)"-o", NULL,
        (char *)"-p", pid_arg, NULL
    };
    uint64_t iothread = 0, main_loop = 0, all = 0;
    GPid strace;
    int fd, i;

    fd = g_file_open_tmp("virtio-blk-bench-strace.XXXXXX", &log, &err);
    if (fd < 0) {
        die("%s", err->message);
    }
    close(fd);
    argv[4] = log;
    if (!g_spawn_async(NULL, argv, NULL,
                       G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                       NULL, NULL, &strace, &err)) {
        die("cannot run strace: %s", err->message);
    }
    wait_traced(pid, strace);
    bench_run(b, nreqs);
    kill(strace, SIGINT);
    waitpid(strace, NULL, 0);

    if (!g_file_get_contents(log, &text, NULL, &err)) {
        die("%s", err->message);
    }
    unlink(log);
    /* "TID  name(...": one call; resumed calls, signals and exits are not */
    lines = g_strsplit(text, "\n", 0);
    for (i = 0; lines[i]; i++) {
        char *rest;
        gint64 t = g_ascii_strtoll(lines[i], &rest, 10);

        if (rest == lines[i]) {
            continue;
        }
        rest = g_strchug(rest);
        if (!g_ascii_isalpha(rest[0]) && rest[0] != '_') {
            continue;
        }
        all++;
        iothread += t == tid;
        main_loop += t == pid;
    }
    printf("iothread_syscalls_per_req %.2f calls\n",
           (double)iothread / nreqs);
    printf("main_syscalls_per_req %.2f calls\n", (double)main_loop / nreqs);
    printf("all_syscalls_per_req %.2f calls\n", (double)all / nreqs);
}

static void bench_teardown(Bench *b)
{
    qvirtqueue_cleanup(b->vdev->bus, b->vq, &b->alloc);
    qvirtio_pci_device_disable(b->pdev);
    g_free(b->pdev->pdev);
    g_free(b->pdev);
    qpci_free_pc(b->bus);
    alloc_destroy(&b->alloc);
    qtest_quit(b->qts);
    g_free(b->slots);
    g_free(b->free_slots);
    g_free(b->slot_of_head);
    g_free(b->batch);
    g_free(b->ring_buf);
    g_free(b->used_buf);
    g_free(b->ctl_copy);
}

/* --- main --------------------------------------------------------------- */

static void parse_options(int argc, char **argv, BenchOptions *o)
{
    g_autofree char *workload = NULL;
    g_autofree char *backend = NULL;
    g_autofree char *size = NULL;
    char *shm_dir = NULL;
    char *device_props = NULL;
    gint64 seed = 1;
    GOptionEntry entries[] = {
        { "workload", 'w', 0, G_OPTION_ARG_STRING, &workload,
          "randread, seqwrite or randrw (default randread)", "W" },
        { "qd", 'q', 0, G_OPTION_ARG_INT, &o->qd,
          "requests in flight (default 32)", "N" },
        { "requests", 'n', 0, G_OPTION_ARG_INT64, &o->requests,
          "requests in the measured phase (default 100000)", "N" },
        { "warmup", 0, 0, G_OPTION_ARG_INT64, &o->warmup,
          "requests before it (default 1000)", "N" },
        { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend,
          "null (null-co, data untouched) or shm (raw file, io_uring)",
          "B" },
        { "size", 0, 0, G_OPTION_ARG_STRING, &size,
          "disk size (default 1G)", "SIZE" },
        { "shm-dir", 0, 0, G_OPTION_ARG_FILENAME, &shm_dir,
          "directory of the shm backend's file (default /dev/shm)", "DIR" },
        { "block-size", 0, 0, G_OPTION_ARG_INT, &o->block_size,
          "bytes per request (default 4096)", "N" },
        { "segments", 0, 0, G_OPTION_ARG_INT, &o->segments,
          "data descriptors per request, equal parts of it (default 1)",
          "N" },
        { "read-pct", 0, 0, G_OPTION_ARG_INT, &o->read_pct,
          "randrw: percentage of reads (default 70)", "P" },
        { "flush-every", 0, 0, G_OPTION_ARG_INT, &o->flush_every,
          "a FLUSH after every N writes (default 0: none)", "N" },
        { "discard-pct", 0, 0, G_OPTION_ARG_INT, &o->discard_pct,
          "percentage of requests that DISCARD a block (default 0)", "P" },
        { "poll-max-ns", 0, 0, G_OPTION_ARG_INT64, &o->poll_max_ns,
          "the iothread's poll-max-ns (default: QEMU's)", "NS" },
        { "direct", 0, 0, G_OPTION_ARG_NONE, &o->direct,
          "chains in the ring, not in indirect tables", NULL },
        { "no-event-idx", 0, 0, G_OPTION_ARG_NONE, &o->no_event_idx,
          "do not negotiate VIRTIO_RING_F_EVENT_IDX", NULL },
        { "seed", 0, 0, G_OPTION_ARG_INT64, &seed,
          "random seed (default 1)", "N" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_s,
          "seconds without a completion before giving up (default 300)",
          "S" },
        { "syscalls", 0, 0, G_OPTION_ARG_INT64, &o->syscall_requests,
          "then count system calls over N requests with strace "
          "(default 0: do not)", "N" },
        { "device-props", 0, 0, G_OPTION_ARG_STRING, &device_props,
          "more properties of the device, e.g. coalesce-delay-us=100",
          "PROPS" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- virtio-blk load generator");
    g_autoptr(GError) err = NULL;

    *o = (BenchOptions) {
        .qd = 32, .requests = 100000, .warmup = 1000, .block_size = 4096,
        .segments = 1, .read_pct = 70, .shm_dir = "/dev/shm",
        .size = 1ll << 30,
        .poll_max_ns = -1, .timeout_s = 300, .device_props = "",
    };
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die("%s", err->message);
    }

    if (!workload || !strcmp(workload, "randread")) {
        o->workload = WORKLOAD_RANDREAD;
    } else if (!strcmp(workload, "seqwrite")) {
        o->workload = WORKLOAD_SEQWRITE;
    } else if (!strcmp(workload, "randrw")) {
        o->workload = WORKLOAD_RANDRW;
    } else {
        die("unknown workload '%s'", workload);
    }
    if (!backend || !strcmp(backend, "null")) {
        o->shm = false;
    } else if (!strcmp(backend, "shm")) {
        o->shm = true;
    } else {
        die("unknown backend '%s'", backend);
    }
    if (shm_dir) {
        o->shm_dir = shm_dir;
    }
    if (device_props) {
        o->device_props = device_props;
    }
    if (size) {
        uint64_t v;

        if (qemu_strtosz(size, NULL, &v) < 0) {
            die("bad size '%s'", size);
        }
        o->size = v;
    }
    o->seed = seed;
    if (o->qd < 1 || o->requests < 1 || o->warmup < 0 ||
        o->block_size < SECTOR_SIZE || o->block_size % SECTOR_SIZE ||
        o->size < o->block_size || o->size % o->block_size ||
        o->segments < 1 || o->block_size % o->segments ||
        o->read_pct < 0 || o->read_pct > 100 || o->flush_every < 0 ||
        o->discard_pct < 0 || o->discard_pct > 100 || o->timeout_s < 1 ||
        o->syscall_requests < 0) {
        die("bad option value (see --help)");
    }
}

int main(int argc, char **argv)
{
    BenchOptions o;
    Bench b = { .opts = &o };
    g_autofree char *shm_path = NULL;
    g_autoptr(GArray) cpu0 = NULL;
    g_autoptr(GArray) cpu1 = NULL;
    gint64 start, end;
    uint64_t kicks0, n;
    double secs;
    pid_t pid;
    int tid;

    parse_options(argc, argv, &o);
    b.rng = o.seed ? o.seed : 1;
    if (!g_file_test("/proc/self/schedstat", G_FILE_TEST_EXISTS)) {
        die("no /proc/PID/schedstat (a kernel without CONFIG_SCHED_INFO)");
    }

    bench_start_qemu(&b, &shm_path);
    if (shm_path) {
        /* QEMU has it open; nothing is left behind if we fail */
        unlink(shm_path);
    }
    pid = qtest_pid(b.qts);
    tid = find_thread(pid, IOTHREAD_COMM);
    if (tid < 0) {
        die("no thread named '%s' in process %d", IOTHREAD_COMM, pid);
    }

    bench_start_device(&b);
    bench_setup_slots(&b);
    bench_run(&b, o.warmup);

    kicks0 = b.kicks;
    cpu0 = cpu_snapshot(pid);
    start = g_get_monotonic_time();
    bench_run(&b, o.requests);
    end = g_get_monotonic_time();
    cpu1 = cpu_snapshot(pid);

    n = o.requests;
    secs = (end - start) / 1e6;
    printf("requests %" PRIu64 " req\n", n);
    printf("elapsed %.6f s\n", secs);
    printf("requests_per_s %.0f req/s\n", n / secs);
    /*
     * Without irqfd (qtest has no KVM) the main loop injects the
     * interrupts, so the iothread alone is not all of the device's work.
     */
    printf("iothread_cpu_per_req %.3f us\n",
           cpu_delta(cpu0, cpu1, tid) / 1e3 / n);
    printf("main_cpu_per_req %.3f us\n",
           cpu_delta(cpu0, cpu1, pid) / 1e3 / n);
    printf("all_cpu_per_req %.3f us\n", cpu_delta(cpu0, cpu1, -1) / 1e3 / n);
    printf("kicks %" PRIu64 " kick\n", b.kicks - kicks0);
    printf("requests_per_kick %.2f req/kick\n",
           (double)n / (b.kicks - kicks0));
    if (o.syscall_requests) {
        bench_count_syscalls(&b, pid, tid, o.syscall_requests);
    }
    printf("status_ok %" PRIu64 " req\n", b.completed);

    bench_teardown(&b);
    return 0;
}

/*
 * QTest testcase for the virtio-blk data path against a reference model
 *
 * Thousands of random reads, writes and flushes of 512 B to 1 MiB go
 * through virtio-blk in batches of up to 16 requests per kick, with
 * random descriptor layouts: 1 to many data descriptors, direct and
 * indirect, header and status in their own descriptors or sharing one
 * with data, buffers at odd guest addresses. Sequential runs make the
 * device merge requests. Every read is checked byte by byte against an
 * in-memory model of the disk, and at the end the disk is read back
 * whole, through the device and from the image file. Lifecycle events
 * (reset, unplug, resize, iothread changes) hit the device with requests
 * in flight, and multiqueue devices serve batches on all queues at once.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qobject/qjson.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/qgraph.h"
#include "libqos/virtio-blk.h"

#define DISK_SIZE           (32 * 1024 * 1024)
#define SECTOR_SIZE         512
#define MAX_REQ_SECTORS     (1024 * 1024 / SECTOR_SIZE)
#define MAX_BATCH           16
#define MAX_BATCH_BYTES     (8 * 1024 * 1024)
#define MAX_DATA_DESCS      64
#define MAX_REDRAWS         8
#define NUM_REQUESTS        2000
#define TIMEOUT_US          (30 * 1000 * 1000)

typedef struct ModelDisk {
    char *path;
    uint8_t *data;              /* what the disk must contain */
    uint64_t size;
} ModelDisk;

/* One buffer of a request as the driver lays it out in a descriptor */
typedef struct Seg {
    uint64_t addr;
    uint32_t len;
    bool device_writes;
} Seg;

typedef struct Request {
    uint32_t type;
    uint64_t sector;
    uint32_t nbytes;            /* data bytes, excluding header and status */
    uint8_t *data;              /* written data, or expected read data */
    uint64_t alloc_addr;        /* guest buffer: header, data, status */
    uint64_t data_addr;
    uint64_t status_addr;
    uint32_t in_bytes;          /* bytes of device-writable descriptors */
    Seg segs[MAX_DATA_DESCS + 4];
    int nsegs;
    unsigned layout;            /* LAYOUT_* */
    QVRingIndirectDesc *indirect_table;
    uint32_t head;
    uint8_t want_status;        /* VIRTIO_BLK_S_OK unless a fault says */
    bool done;
} Request;

/* How a request is laid out in descriptors; random where not given. */
enum {
    LAYOUT_INDIRECT = 1,        /* in an indirect table */
    /*
     * Header in the first data descriptor of a write, status in the last
     * one of a read: the device cuts them off those descriptors.
     */
    LAYOUT_SHARE_EDGES = 2,
};

typedef struct Batch {
    Request reqs[MAX_BATCH];
    int nreqs;
    uint32_t ndescs;            /* ring descriptors used by the batch */
    uint64_t nbytes;
} Batch;

static ModelDisk *disk;         /* of drive0 */
static ModelDisk *disk1;        /* of drive1, for a hot-plugged device */
static ModelDisk *disk2;        /* of node disk2, which outlives its device */

static void model_disk_destroy(void *opaque)
{
    ModelDisk **pm = opaque;
    ModelDisk *m = *pm;

    unlink(m->path);
    g_free(m->path);
    g_free(m->data);
    g_free(m);
    *pm = NULL;
    qos_invalidate_command_line();
}

/* A zeroed image of @size bytes, and its model, in *@pm until the test ends */
static void model_disk_create(ModelDisk **pm, uint64_t size)
{
    ModelDisk *m = g_new0(ModelDisk, 1);
    int fd;

    fd = g_file_open_tmp("qtest.XXXXXX", &m->path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
    m->data = g_malloc0(size);
    m->size = size;
    *pm = m;
    g_test_queue_destroy(model_disk_destroy, pm);
}

/* The image grew to @size bytes (block_resize): zeros past the old end */
static void model_disk_resize(ModelDisk *m, uint64_t size)
{
    m->data = g_realloc(m->data, size);
    if (size > m->size) {
        memset(m->data + m->size, 0, size - m->size);
    }
    m->size = size;
}

/* A raw drive @id on the image of @m, with more -drive options in @opts */
static void model_drive_append(GString *cmd_line, const char *id,
                               ModelDisk *m, const char *opts)
{
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=%s,file=%s,"
                           "format=raw,auto-read-only=off%s ",
                           id, m->path, opts);
}

static void *model_setup(GString *cmd_line, void *arg)
{
    model_disk_create(&disk, DISK_SIZE);
    model_drive_append(cmd_line, "drive0", disk, "");
    if (arg) {
        g_string_append_printf(cmd_line, " -object iothread,id=%s ",
                               (char *)arg);
    }
    return arg;
}

/* Set up the first @nvqs virtqueues of a device that serves @m */
static void model_start_device(QVirtioDevice *dev, QGuestAllocator *alloc,
                               ModelDisk *m, QVirtQueue **vqs, int nvqs)
{
    uint64_t features = qvirtio_get_features(dev);
    int i;

    g_assert_cmphex(features & (1ull << VIRTIO_RING_F_INDIRECT_DESC), !=, 0);
    features &= ~(QVIRTIO_F_BAD_FEATURE |
                  (1ull << VIRTIO_RING_F_EVENT_IDX) |
                  (1ull << VIRTIO_BLK_F_SCSI));
    qvirtio_set_features(dev, features);
    g_assert_cmpuint(qvirtio_config_readq(dev, 0), ==, m->size / SECTOR_SIZE);
    if (nvqs > 1) {
        g_assert_cmphex(features & (1ull << VIRTIO_BLK_F_MQ), !=, 0);
        g_assert_cmpuint(qvirtio_config_readw(dev,
                             offsetof(struct virtio_blk_config, num_queues)),
                         ==, nvqs);
    }

    for (i = 0; i < nvqs; i++) {
        vqs[i] = qvirtqueue_setup(dev, alloc, i);
    }
    qvirtio_set_driver_ok(dev);
}

static uint32_t rand_range(uint32_t lo, uint32_t hi_inclusive)
{
    return g_test_rand_int_range(lo, hi_inclusive + 1);
}

/* Sizes spread evenly over powers of two, so small requests dominate. */
static uint32_t rand_sectors(void)
{
    int bits = rand_range(0, 11);       /* 2^11 sectors = 1 MiB */
    uint32_t lo = 1u << bits;
    uint32_t hi = MIN(2 * lo - 1, MAX_REQ_SECTORS);

    return rand_range(lo, hi);
}

static void add_seg(Request *r, uint64_t addr, uint32_t len,
                    bool device_writes)
{
    g_assert_cmpint(r->nsegs, <, ARRAY_SIZE(r->segs));
    r->segs[r->nsegs++] = (Seg) { addr, len, device_writes };
    if (device_writes) {
        r->in_bytes += len;
    }
}

/*
 * Cut [addr, addr + len) into up to @n descriptors of random, non-zero
 * length.
 */
static void add_split_segs(Request *r, uint64_t addr, uint32_t len,
                           uint32_t n, bool device_writes)
{
    if (len == 0) {
        return;
    }
    for (n = MIN(n, len); n > 1; n--) {
        uint32_t piece = rand_range(1, MIN(len - (n - 1), MAX(1, 2 * len / n)));

        add_seg(r, addr, piece, device_writes);
        addr += piece;
        len -= piece;
    }
    add_seg(r, addr, len, device_writes);
}

/*
 * Lay the request out in guest memory as
 *     [header 16][pad][data nbytes][pad][status 1]
 * and describe it with a random choice of descriptors. ANY_LAYOUT (implied
 * by VIRTIO 1.0) lets the header share a descriptor with write data and the
 * status byte share one with read data.
 */
static void request_build_segs(QGuestAllocator *alloc, Request *r)
{
    bool share = r->layout & LAYOUT_SHARE_EDGES;
    uint32_t pad1 = share || rand_range(0, 1) ? 0 : rand_range(1, 63);
    uint32_t pad2 = share || rand_range(0, 1) ? 0 : rand_range(1, 63);
    uint64_t hdr, data, status;
    bool is_write = r->type == VIRTIO_BLK_T_OUT;
    bool has_data = r->nbytes > 0;
    int ndata = has_data ? rand_range(1, MIN(MAX_DATA_DESCS, r->nbytes)) : 0;
    uint8_t hdr_bytes[16];

    /* Odd start addresses too: nothing says buffers are aligned. */
    r->alloc_addr = guest_alloc(alloc, 16 + pad1 + r->nbytes + pad2 + 1 + 8);
    hdr = r->alloc_addr + rand_range(0, 7);
    data = hdr + 16 + pad1;
    status = data + r->nbytes + pad2;
    r->data_addr = data;
    r->status_addr = status;

    stl_le_p(hdr_bytes, r->type);
    stl_le_p(hdr_bytes + 4, 0);                  /* ioprio */
    stq_le_p(hdr_bytes + 8, r->sector);
    qtest_bufwrite(global_qtest, hdr, hdr_bytes, sizeof(hdr_bytes));
    qtest_writeb(global_qtest, status, 0xff);
    if (is_write) {
        qtest_bufwrite(global_qtest, data, r->data, r->nbytes);
    } else if (has_data) {
        qtest_memset(global_qtest, data, 0xa5, r->nbytes);
    }

    r->nsegs = 0;
    r->in_bytes = 0;
    if (is_write && pad1 == 0 && (share || rand_range(0, 3) == 0)) {
        /* header and the first bytes of data in one descriptor */
        uint32_t first = rand_range(1, r->nbytes);

        add_seg(r, hdr, 16 + first, false);
        add_split_segs(r, data + first, r->nbytes - first, ndata, false);
    } else {
        if (rand_range(0, 7) == 0) {
            add_seg(r, hdr, 8, false);  /* header split in two */
            add_seg(r, hdr + 8, 8, false);
        } else {
            add_seg(r, hdr, 16, false);
        }
        if (has_data) {
            add_split_segs(r, data, r->nbytes, ndata, !is_write);
        }
    }

    if (!is_write && has_data && pad2 == 0 &&
        (share || rand_range(0, 3) == 0)) {
        /* status byte shares the last data descriptor */
        g_assert_true(r->segs[r->nsegs - 1].device_writes);
        r->segs[r->nsegs - 1].len++;
        r->in_bytes++;
    } else {
        add_seg(r, status, 1, true);
    }
}

static uint32_t request_ring_descs(Request *r)
{
    return r->layout & LAYOUT_INDIRECT ? 1 : r->nsegs;
}

static void request_publish(QVirtioDevice *dev, QGuestAllocator *alloc,
                            QVirtQueue *vq, Request *r)
{
    int i;

    if (r->layout & LAYOUT_INDIRECT) {
        r->indirect_table = qvring_indirect_desc_setup(global_qtest, dev,
                                                       alloc, r->nsegs);
        for (i = 0; i < r->nsegs; i++) {
            qvring_indirect_desc_add(dev, global_qtest, r->indirect_table,
                                     r->segs[i].addr, r->segs[i].len,
                                     r->segs[i].device_writes);
        }
        r->head = qvirtqueue_add_indirect(global_qtest, vq,
                                          r->indirect_table);
        return;
    }
    for (i = 0; i < r->nsegs; i++) {
        uint32_t idx = qvirtqueue_add(global_qtest, vq, r->segs[i].addr,
                                      r->segs[i].len,
                                      r->segs[i].device_writes,
                                      i + 1 < r->nsegs);
        if (i == 0) {
            r->head = idx;
        }
    }
}

/*
 * Ring fields are little-endian: x86 hosts the qos machines this test
 * runs on, and VIRTIO 1.0 is little-endian everywhere.
 *
 * Make all heads of the batch available with one avail->idx update, then
 * notify unless the device asked not to be (VRING_USED_F_NO_NOTIFY).
 */
static void batch_kick(QVirtioDevice *dev, QVirtQueue *vq, Batch *b)
{
    uint16_t idx = qtest_readw(global_qtest, vq->avail + 2);
    int i;

    for (i = 0; i < b->nreqs; i++) {
        uint64_t slot = vq->avail + 4 + 2 * ((idx + i) % vq->size);

        qtest_writew(global_qtest, slot, b->reqs[i].head);
    }
    qtest_writew(global_qtest, vq->avail + 2, idx + b->nreqs);
    if (!(qtest_readw(global_qtest, vq->used) & VRING_USED_F_NO_NOTIFY)) {
        dev->bus->virtqueue_kick(dev, vq);
    }
}

/* The next used element, with its full 32-bit length. */
static bool used_ring_pop(QVirtQueue *vq, uint32_t *head, uint32_t *len)
{
    uint16_t idx = qtest_readw(global_qtest,
                               vq->used + offsetof(struct vring_used, idx));
    uint64_t elem;

    if (idx == vq->last_used_idx) {
        return false;
    }
    elem = vq->used + offsetof(struct vring_used, ring) +
           (vq->last_used_idx % vq->size) * sizeof(struct vring_used_elem);
    *head = qtest_readl(global_qtest,
                        elem + offsetof(struct vring_used_elem, id));
    *len = qtest_readl(global_qtest,
                       elem + offsetof(struct vring_used_elem, len));
    vq->last_used_idx++;
    return true;
}

static Request *batch_find(Batch *b, uint32_t head)
{
    int i;

    for (i = 0; i < b->nreqs; i++) {
        if (b->reqs[i].head == head) {
            return &b->reqs[i];
        }
    }
    return NULL;
}

static void request_check(Request *r)
{
    g_autofree uint8_t *got = NULL;
    uint32_t i;

    g_assert_cmpuint(qtest_readb(global_qtest, r->status_addr), ==,
                     r->want_status);
    /* an ignored read error leaves the buffer as it was */
    if (r->type != VIRTIO_BLK_T_IN || !r->data) {
        return;
    }
    got = g_malloc(r->nbytes);
    qtest_bufread(global_qtest, r->data_addr, got, r->nbytes);
    for (i = 0; i < r->nbytes; i++) {
        if (got[i] != r->data[i]) {
            g_test_message("read of %u bytes at sector %" PRIu64
                           " differs from the model at byte %u",
                           r->nbytes, r->sector, i);
            g_assert_cmphex(got[i], ==, r->data[i]);
        }
    }
}

/*
 * A head the device used must be one of the batch, used for the first
 * time, complete, with the status it is owed.
 */
static void batch_complete(Batch *b, uint32_t head, uint32_t len)
{
    Request *r = batch_find(b, head);

    g_assert_nonnull(r);
    g_assert_false(r->done);
    r->done = true;
    /* the device wrote every device-writable byte of the chain */
    if (r->want_status == VIRTIO_BLK_S_OK) {
        g_assert_cmpuint(len, ==, r->in_bytes);
    }
    request_check(r);
}

/* Each head of the batch must come back exactly once. */
static void batch_wait(QVirtioDevice *dev, QVirtQueue *vq, Batch *b)
{
    gint64 start = g_get_monotonic_time();
    int remaining = b->nreqs;
    uint32_t head, len;

    while (remaining) {
        if (!used_ring_pop(vq, &head, &len)) {
            g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
            continue;
        }
        batch_complete(b, head, len);
        remaining--;
    }
}

/*
 * What the device used of the batch so far, where it may never use the
 * rest (it was reset or unplugged). Returns how many heads it used.
 */
static int batch_collect(QVirtQueue *vq, Batch *b)
{
    uint32_t head, len;
    int n = 0;

    while (used_ring_pop(vq, &head, &len)) {
        batch_complete(b, head, len);
        n++;
    }
    return n;
}

/* Nothing (more) is used on @vq for a while. */
static void vq_check_quiet(QVirtQueue *vq)
{
    g_usleep(100 * 1000);
    g_assert_cmpuint(qtest_readw(global_qtest, vq->used + 2), ==,
                     vq->last_used_idx);
}

static void batch_free(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 0; i < b->nreqs; i++) {
        Request *r = &b->reqs[i];

        guest_free(alloc, r->alloc_addr);
        if (r->indirect_table) {
            guest_free(alloc, r->indirect_table->desc);
            g_free(r->indirect_table);
        }
        g_free(r->data);
    }
    memset(b, 0, sizeof(*b));
    qvirtqueue_reset_pool(vq);
}

static bool ranges_overlap_bytes(uint64_t a, uint64_t alen,
                                 uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/*
 * Requests of one batch may complete in any order (the device may even
 * merge them), so a write must not overlap anything else in flight.
 */
static bool batch_conflicts(Batch *b, uint32_t type, uint64_t sector,
                            uint32_t nbytes)
{
    int i;

    for (i = 0; i < b->nreqs; i++) {
        Request *o = &b->reqs[i];

        if ((type == VIRTIO_BLK_T_OUT || o->type == VIRTIO_BLK_T_OUT) &&
            ranges_overlap_bytes(sector * SECTOR_SIZE, nbytes,
                                 o->sector * SECTOR_SIZE, o->nbytes)) {
            return true;
        }
    }
    return false;
}

/*
 * Queue one request in @b and apply it to the model. Returns false (and
 * queues nothing) when it would not fit in the batch.
 */
static bool batch_add(QVirtioDevice *dev, QGuestAllocator *alloc,
                      QVirtQueue *vq, ModelDisk *m, Batch *b, uint32_t type,
                      uint64_t sector, uint32_t nbytes, unsigned layout)
{
    Request *r = &b->reqs[b->nreqs];
    uint64_t offset = sector * SECTOR_SIZE;

    if (b->nreqs == MAX_BATCH ||
        (b->nreqs && b->nbytes + nbytes > MAX_BATCH_BYTES) ||
        batch_conflicts(b, type, sector, nbytes)) {
        return false;
    }

    *r = (Request) { .type = type, .sector = sector, .nbytes = nbytes,
                     .layout = layout };
    if (type == VIRTIO_BLK_T_OUT) {
        uint32_t i;

        r->data = g_malloc(nbytes);
        for (i = 0; i < nbytes; i += 4) {
            stl_he_p(r->data + i, g_test_rand_int());
        }
        memcpy(m->data + offset, r->data, nbytes);
    } else if (type == VIRTIO_BLK_T_IN) {
        r->data = g_memdup2(m->data + offset, nbytes);
    }
    request_build_segs(alloc, r);

    /* Direct chains share the ring; past its size, go indirect. */
    if (b->ndescs + r->nsegs > vq->size) {
        r->layout |= LAYOUT_INDIRECT;
    }
    request_publish(dev, alloc, vq, r);
    b->ndescs += request_ring_descs(r);
    b->nbytes += nbytes;
    b->nreqs++;
    return true;
}

static void batch_run(QVirtioDevice *dev, QGuestAllocator *alloc,
                      QVirtQueue *vq, Batch *b)
{
    batch_kick(dev, vq, b);
    batch_wait(dev, vq, b);
    batch_free(alloc, vq, b);
}

/* Would the request conflict with one of any of the @nround batches? */
static bool round_conflicts(Batch *round, int nround, uint32_t type,
                            uint64_t sector, uint32_t nbytes)
{
    int i;

    for (i = 0; i < nround; i++) {
        if (batch_conflicts(&round[i], type, sector, nbytes)) {
            return true;
        }
    }
    return false;
}

/*
 * Add up to @nreqs random reads, writes and flushes to @b, one of the
 * @nround batches of a round; a third of them continue where the
 * previous request of the batch ended, in the same direction, which is
 * what the device merges. A request that conflicts with one of any batch
 * of the round is drawn again, MAX_REDRAWS times in all at most. Returns
 * how many requests it added.
 */
static int batch_fill_random(QVirtioDevice *dev, QGuestAllocator *alloc,
                             QVirtQueue *vq, ModelDisk *m, Batch *round,
                             int nround, Batch *b, int nreqs)
{
    const uint64_t disk_sectors = m->size / SECTOR_SIZE;
    int added = 0, redraws = 0;

    while (added < nreqs) {
        Request *prev = b->nreqs ? &b->reqs[b->nreqs - 1] : NULL;
        uint32_t nsectors = rand_sectors();
        uint32_t type = rand_range(0, 1) ? VIRTIO_BLK_T_OUT
                                         : VIRTIO_BLK_T_IN;
        uint64_t sector = rand_range(0, disk_sectors - nsectors);
        unsigned layout = rand_range(0, 2) ? 0 : LAYOUT_INDIRECT;

        if (rand_range(0, 31) == 0) {
            type = VIRTIO_BLK_T_FLUSH;
            sector = 0;
            nsectors = 0;
        } else if (prev && prev->nbytes && rand_range(0, 2) == 0 &&
                   prev->sector + prev->nbytes / SECTOR_SIZE + nsectors
                   <= disk_sectors) {
            type = prev->type;
            sector = prev->sector + prev->nbytes / SECTOR_SIZE;
        }
        if (round_conflicts(round, nround, type, sector,
                            nsectors * SECTOR_SIZE)) {
            if (++redraws > MAX_REDRAWS) {
                break;
            }
            continue;
        }
        if (!batch_add(dev, alloc, vq, m, b, type, sector,
                       nsectors * SECTOR_SIZE, layout)) {
            break;
        }
        added++;
    }
    return added;
}

/*
 * @nreqs random requests in rounds of random batches, one batch per
 * queue: a round kicks all its batches, so that they are in flight at
 * once, then waits for them all.
 */
static void model_random_io(QVirtioDevice *dev, QGuestAllocator *alloc,
                            ModelDisk *m, QVirtQueue **vqs, int nvqs,
                            int nreqs)
{
    g_autofree Batch *round = g_new0(Batch, nvqs);
    int done = 0;
    int q;

    while (done < nreqs) {
        for (q = 0; q < nvqs && done < nreqs; q++) {
            done += batch_fill_random(dev, alloc, vqs[q], m, round, nvqs,
                                      &round[q],
                                      MIN(rand_range(1, MAX_BATCH),
                                          nreqs - done));
        }
        for (q = 0; q < nvqs; q++) {
            batch_kick(dev, vqs[q], &round[q]);
        }
        for (q = 0; q < nvqs; q++) {
            batch_wait(dev, vqs[q], &round[q]);
            batch_free(alloc, vqs[q], &round[q]);
        }
    }
}

/* Read the whole disk back through the device, 1 MiB per request. */
static void model_read_back(QVirtioDevice *dev, QGuestAllocator *alloc,
                            ModelDisk *m, QVirtQueue *vq)
{
    g_autofree Batch *b = g_new0(Batch, 1);
    uint64_t sector = 0;

    while (sector < m->size / SECTOR_SIZE) {
        if (!batch_add(dev, alloc, vq, m, b, VIRTIO_BLK_T_IN, sector,
                       MIN(MAX_REQ_SECTORS, m->size / SECTOR_SIZE - sector)
                       * SECTOR_SIZE, 0)) {
            batch_run(dev, alloc, vq, b);
            continue;
        }
        sector += MAX_REQ_SECTORS;
    }
    batch_run(dev, alloc, vq, b);
}

/* The image file must hold exactly the model: nothing lost, nothing extra. */
static void model_check_image(ModelDisk *m)
{
    g_autofree uint8_t *file = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(m->path, (char **)&file, &len, NULL));
    g_assert_cmpuint(len, ==, m->size);
    g_assert_true(memcmp(file, m->data, m->size) == 0);
}

/* Random I/O, then the whole disk back through the device and the file */
static void model_exercise(QVirtioDevice *dev, QGuestAllocator *alloc,
                           ModelDisk *m, QVirtQueue **vqs, int nvqs,
                           int nreqs)
{
    model_random_io(dev, alloc, m, vqs, nvqs, nreqs);
    model_read_back(dev, alloc, m, vqs[0]);
    model_check_image(m);
}

static void model_rw(QVirtioDevice *dev, QGuestAllocator *alloc)
{
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1);
    model_exercise(dev, alloc, disk, &vq, 1, NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_model_rw(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioBlk *blk_if = obj;

    model_rw(blk_if->vdev, alloc);
}

/* The same on virtio-blk-pci, the node that can take an iothread. */
static void test_model_rw_pci(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;

    model_rw(&pdev->vdev, alloc);
}

/*
 * --- injected I/O errors -------------------------------------------------
 *
 * blkdebug fails the requests of one batch with EIO or ENOSPC, and the
 * drive's error policy (rerror for reads, werror for writes and flushes)
 * decides: "report" completes them with IOERR, "ignore" with OK (nothing
 * written), "stop" stops the VM with BLOCK_IO_ERROR and holds them until
 * `cont` resubmits them, and "enospc" stops on ENOSPC and reports EIO.
 * Either way every request completes exactly once, and the disk ends up
 * holding exactly what completed. The failing requests share descriptors
 * between header or status and data, so a held request that is not given
 * back its buffers whole is parsed wrongly when it is resubmitted.
 */
#define FAULT_SECTOR        4096
#define FAULT_REQ_SECTORS   8
#define FAULT_MERGED_REQS   8

typedef struct FaultCase {
    const char *op;             /* "read", "write" or "flush" */
    int err;
    const char *policy;
    int nreqs;                  /* sequential requests in one kick */
    bool migrate;               /* migrate while the requests are held */
    bool iothread;
} FaultCase;

static const char *fault_error_action(const FaultCase *fc)
{
    if (!strcmp(fc->policy, "enospc")) {
        return fc->err == ENOSPC ? "stop" : "report";
    }
    return fc->policy;
}

/* The machine without the drive, for a migration target. */
static char *fault_machine_cmdline;

static void fault_cmdline_free(void *opaque)
{
    g_free(fault_machine_cmdline);
    fault_machine_cmdline = NULL;
}

static void *fault_setup(GString *cmd_line, void *arg)
{
    const FaultCase *fc = arg;
    const char *event = !strcmp(fc->op, "flush") ? "flush_to_disk"
                        : !strcmp(fc->op, "read") ? "read_aio" : "write_aio";
    /* a held request must succeed when `cont` resubmits it */
    bool once = !strcmp(fault_error_action(fc), "stop");
    /*
     * Reads and writes fail only where they cover FAULT_SECTOR (realize
     * reads sector 0 for the geometry); a flush has no sector.
     */
    g_autofree char *sector = !strcmp(fc->op, "flush") ? g_strdup("") :
        g_strdup_printf("file.inject-error.0.sector=%d,", FAULT_SECTOR);

    if (fc->iothread) {
        g_string_append(cmd_line, " -object iothread,id=iothread0 ");
    }
    fault_machine_cmdline = g_strdup(cmd_line->str);
    g_test_queue_destroy(fault_cmdline_free, NULL);
    model_disk_create(&disk, DISK_SIZE);
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,format=raw,"
                           "auto-read-only=off,%s=%s,file.driver=blkdebug,"
                           "file.image.filename=%s,"
                           "file.inject-error.0.event=%s,"
                           "file.inject-error.0.iotype=%s,"
                           "file.inject-error.0.errno=%d,%s"
                           "file.inject-error.0.once=%s ",
                           !strcmp(fc->op, "read") ? "rerror" : "werror",
                           fc->policy, disk->path, event, fc->op, fc->err,
                           sector, once ? "on" : "off");
    return arg;
}

/* Queue the requests the fault will hit; returns the batch's type. */
static uint32_t fault_batch_add(QVirtioDevice *dev, QGuestAllocator *alloc,
                                QVirtQueue *vq, Batch *b,
                                const FaultCase *fc)
{
    uint32_t type = !strcmp(fc->op, "read") ? VIRTIO_BLK_T_IN
                    : !strcmp(fc->op, "write") ? VIRTIO_BLK_T_OUT
                    : VIRTIO_BLK_T_FLUSH;
    uint32_t nbytes = type == VIRTIO_BLK_T_FLUSH ? 0
                      : FAULT_REQ_SECTORS * SECTOR_SIZE;
    int i;

    for (i = 0; i < fc->nreqs; i++) {
        g_assert_true(batch_add(dev, alloc, vq, disk, b, type,
                                FAULT_SECTOR + i * FAULT_REQ_SECTORS,
                                nbytes, LAYOUT_SHARE_EDGES));
    }
    return type;
}

/* What a failed batch owes the guest, and what the model must forget. */
static void fault_batch_expect_failed(Batch *b, const uint8_t *before,
                                      bool report)
{
    int i;

    for (i = 0; i < b->nreqs; i++) {
        Request *r = &b->reqs[i];

        r->want_status = report ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        if (r->type == VIRTIO_BLK_T_IN) {
            g_free(r->data);
            r->data = NULL;
        }
    }
    /* a failed write left the disk as it was */
    memcpy(disk->data + FAULT_SECTOR * SECTOR_SIZE, before,
           FAULT_MERGED_REQS * FAULT_REQ_SECTORS * SECTOR_SIZE);
}

static void fault_check_event(const FaultCase *fc)
{
    QDict *ev = qtest_qmp_eventwait_ref(global_qtest, "BLOCK_IO_ERROR");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "action"), ==,
                    fault_error_action(fc));
    g_assert_cmpstr(qdict_get_str(data, "operation"), ==,
                    !strcmp(fc->op, "read") ? "read" : "write");
    /* present when the policy can stop the VM (query-block's io-status) */
    if (strcmp(fc->policy, "report") && strcmp(fc->policy, "ignore")) {
        g_assert_cmpint(qdict_get_bool(data, "nospace"), ==,
                        fc->err == ENOSPC);
    }
    qobject_unref(ev);
}

/* Wait for migration to end in @want: "completed" or "failed". */
static void query_migrate_wait(QTestState *qts, const char *want)
{
    gint64 start = g_get_monotonic_time();

    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        const char *status = qdict_get_try_str(ret, "status");
        bool done = status && (!strcmp(status, "completed") ||
                               !strcmp(status, "failed"));

        if (done) {
            g_assert_cmpstr(status, ==, want);
        }
        qobject_unref(rsp);
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(10 * 1000);
    }
}

/* Save the stopped VM, with the requests it holds, to a migration file. */
static char *fault_migrate_save(void)
{
    char *path = g_strdup_printf("%s/migration.%d", g_get_tmp_dir(),
                                 getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
    query_migrate_wait(global_qtest, "completed");
    return path;
}

/* A new QEMU, the migration target, loading @path. */
static QTestState *fault_migrate_load(const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    QTestState *dst;

    dst = qtest_initf("%s -drive if=none,id=drive0,format=raw,"
                      "auto-read-only=off,file=%s -incoming defer",
                      fault_machine_cmdline, disk->path);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "  'arguments': { 'uri': %s,"
                             "                 'exit-on-error': false } }",
                             uri);
    return dst;
}

/*
 * Move the stopped VM, with the requests it holds, to a new QEMU through
 * a migration file; the new QEMU becomes global_qtest.
 */
static QTestState *fault_migrate(void)
{
    g_autofree char *path = fault_migrate_save();
    QTestState *src = global_qtest;

    global_qtest = fault_migrate_load(path);
    query_migrate_wait(global_qtest, "completed");
    unlink(path);
    return src;
}

static void fault_run(QVirtioDevice *dev, QGuestAllocator *alloc,
                      const FaultCase *fc)
{
    const size_t span = FAULT_MERGED_REQS * FAULT_REQ_SECTORS * SECTOR_SIZE;
    g_autofree uint8_t *before = NULL;
    g_autofree Batch *b = g_new0(Batch, 1);
    const char *action = fault_error_action(fc);
    QTestState *src = NULL;
    QVirtQueue *vq;
    uint32_t type;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1);

    /* data to read back, and a write for the flush to flush */
    for (i = 0; i < FAULT_MERGED_REQS; i++) {
        g_assert_true(batch_add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_OUT,
                                FAULT_SECTOR + i * FAULT_REQ_SECTORS,
                                FAULT_REQ_SECTORS * SECTOR_SIZE, 0));
    }
    if (strcmp(fc->op, "write")) {
        batch_run(dev, alloc, vq, b);
    } else {
        /* the writes to fault are these, with the disk still empty */
        batch_free(alloc, vq, b);
        memset(disk->data + FAULT_SECTOR * SECTOR_SIZE, 0, span);
    }
    before = g_memdup2(disk->data + FAULT_SECTOR * SECTOR_SIZE, span);

    type = fault_batch_add(dev, alloc, vq, b, fc);
    batch_kick(dev, vq, b);
    fault_check_event(fc);
    if (!strcmp(action, "stop")) {
        qtest_qmp_eventwait(global_qtest, "STOP");
        /* held, not completed, while the VM is stopped */
        vq_check_quiet(vq);
        if (fc->migrate) {
            src = fault_migrate();
        }
        qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");
    } else {
        fault_batch_expect_failed(b, before, !strcmp(action, "report"));
    }
    batch_wait(dev, vq, b);
    /* no second completion of anything */
    vq_check_quiet(vq);

    if (src) {
        /* the guest lives on in the target, now gone */
        qtest_quit(global_qtest);
        global_qtest = src;
        batch_free(alloc, vq, b);
        qvirtqueue_cleanup(dev->bus, vq, alloc);
        model_check_image(disk);
        return;
    }
    batch_free(alloc, vq, b);
    /* reads would fault again unless the error happened just once */
    if (type != VIRTIO_BLK_T_IN || !strcmp(action, "stop")) {
        model_read_back(dev, alloc, disk, vq);
    }
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_fault_pci(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;

    fault_run(&pdev->vdev, alloc, data);
}

/*
 * Point the held request's first out buffer at @addr in the saved element
 * (VirtQueueElementOld: three u32, then in_addr[1024], out_addr[1024]),
 * as a source that accepted such a buffer would have saved it.
 */
static void migration_file_move_buffer(const char *path, const Request *r,
                                       uint64_t addr)
{
    const size_t addrs = 1024 * sizeof(uint64_t);
    g_autofree char *buf = NULL;
    g_autoptr(GError) err = NULL;
    size_t len, i;
    int found = 0;

    g_assert_true(g_file_get_contents(path, &buf, &len, &err));
    for (i = 0; i + addrs + 8 <= len; i++) {
        if (ldq_he_p(buf + i) == r->segs[r->nsegs - 1].addr &&
            ldq_he_p(buf + i + addrs) == r->segs[0].addr) {
            stq_he_p(buf + i + addrs, addr);
            found++;
        }
    }
    g_assert_cmpint(found, ==, 1);
    g_assert_true(g_file_set_contents(path, buf, len, &err));
}

/*
 * A migration source that accepts buffers in device registers (stock QEMU
 * until the fix) can hand over a held request whose buffer is MMIO. The
 * target must fail the migration, not exit; the source, still holding the
 * request, continues and completes it.
 */
static void test_fault_migrate_buffer_in_registers(void *obj, void *data,
                                                   QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree char *path = NULL;
    QTestState *dst;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1);
    g_assert_true(batch_add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_OUT,
                            FAULT_SECTOR, SECTOR_SIZE, 0));
    batch_kick(dev, vq, b);
    fault_check_event(data);
    qtest_qmp_eventwait(global_qtest, "STOP");

    path = fault_migrate_save();
    migration_file_move_buffer(path, &b->reqs[0],
                               pdev->bar.addr + pdev->common_cfg_offset);
    dst = fault_migrate_load(path);
    query_migrate_wait(dst, "failed");
    qtest_qmp_assert_success(dst, "{ 'execute': 'query-status' }");
    qtest_quit(dst);
    unlink(path);

    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");
    batch_wait(dev, vq, b);
    vq_check_quiet(vq);
    batch_free(alloc, vq, b);
    model_read_back(dev, alloc, disk, vq);
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * Every op x errno x policy, merged and single where that means anything;
 * on virtio-blk-pci, as the virtio-blk node holds as many tests as qgraph
 * can walk.
 */
static void register_fault_tests(void)
{
    static const char *const ops[] = { "read", "write", "flush" };
    static const char *const policies[] = {
        "stop", "report", "ignore", "enospc",
    };
    static const int errs[] = { EIO, ENOSPC };
    /* qgraph keeps the arguments of its tests, and never frees them */
    static FaultCase cases[40];
    QOSGraphTestOptions opts = {
        .before = fault_setup,
    };
    FaultCase *fc = cases;
    char *name;
    int o, p, e, n;

    for (o = 0; o < ARRAY_SIZE(ops); o++) {
        for (p = 0; p < ARRAY_SIZE(policies); p++) {
            /* rerror has no enospc policy */
            if (!strcmp(ops[o], "read") && !strcmp(policies[p], "enospc")) {
                continue;
            }
            for (e = 0; e < ARRAY_SIZE(errs); e++) {
                for (n = 1; n <= FAULT_MERGED_REQS;
                     n += FAULT_MERGED_REQS - 1) {
                    if (!strcmp(ops[o], "flush") && n > 1) {
                        break;
                    }
                    g_assert(fc < cases + ARRAY_SIZE(cases) - 3);
                    *fc = (FaultCase) { ops[o], errs[e], policies[p], n };
                    name = g_strdup_printf("fault/%s-%s-%s%s", ops[o],
                                           errs[e] == EIO ? "eio" : "enospc",
                                           policies[p],
                                           n > 1 ? "-merged" : "");
                    opts.arg = fc;
                    qos_add_test(name, "virtio-blk-pci", test_fault_pci,
                                 &opts);
                    g_free(name);
                    fc++;
                }
            }
        }
    }

    /* a held merged write, with an iothread, and across migration */
    opts.edge.extra_device_opts = "iothread=iothread0";
    *fc = (FaultCase) { "write", EIO, "stop", FAULT_MERGED_REQS,
                        .iothread = true };
    opts.arg = fc;
    qos_add_test("fault/write-eio-stop-merged-iothread", "virtio-blk-pci",
                 test_fault_pci, &opts);
    opts.edge.extra_device_opts = NULL;
    fc++;
    *fc = (FaultCase) { "write", EIO, "stop", FAULT_MERGED_REQS, true };
    opts.arg = fc;
    qos_add_test("fault/write-eio-stop-merged-migrate", "virtio-blk-pci",
                 test_fault_pci, &opts);
    fc++;
    *fc = (FaultCase) { "write", EIO, "stop", 1, true };
    opts.arg = fc;
    qos_add_test("fault/migrate-buffer-in-registers", "virtio-blk-pci",
                 test_fault_migrate_buffer_in_registers, &opts);
}

/*
 * --- lifecycle events under I/O ------------------------------------------
 *
 * A batch is in flight when a system reset, an unplug, a resize or a
 * refused AioContext change hits the device. To have it in flight for
 * sure, block_set_io_throttle limits the drive to one request per
 * second: under qtest, throttling measures time in QEMU_CLOCK_VIRTUAL,
 * which moves only when a test steps it, so all reads and writes but the
 * first stay queued in the throttle group until something drains the
 * drive (draining ignores the limits; so does lifting them). Whatever
 * the event, no head may complete twice and what completes must be
 * right; the drain executes the held writes, so the image must then hold
 * exactly the model; and the device, where it is still there, must serve
 * random I/O again.
 */
#define LC_DISK_SIZE        (4 * 1024 * 1024)
#define LC_GROWTH           (2 * 1024 * 1024)
#define LC_NUM_REQUESTS     40
#define LC_NUM_QUEUES       4
#define LC_SLOT_HP          0x06        /* a hotplug slot of the pc machine */

/*
 * drive0 (node disk0) for the device of the qos graph; drive1 for one a
 * test hot-plugs, and node disk2, a -blockdev, which unlike a -drive is
 * not deleted with the device that used it; and two iothreads. @arg is
 * the iothread a hot-plugged device gets, or NULL.
 */
static void *lifecycle_setup(GString *cmd_line, void *arg)
{
    g_string_append(cmd_line, " -object iothread,id=iothread0"
                    " -object iothread,id=iothread1 ");
    model_disk_create(&disk, LC_DISK_SIZE);
    model_drive_append(cmd_line, "drive0", disk, ",node-name=disk0");
    model_disk_create(&disk1, LC_DISK_SIZE);
    model_drive_append(cmd_line, "drive1", disk1, "");
    model_disk_create(&disk2, LC_DISK_SIZE);
    g_string_append_printf(cmd_line,
                           " -blockdev driver=raw,node-name=disk2,"
                           "file.driver=file,file.filename=%s ",
                           disk2->path);
    return arg;
}

/* The VirtIODevice inside virtio-blk-pci device @id */
static char *lifecycle_vdev_path(const char *id)
{
    return g_strdup_printf("/machine/peripheral/%s/virtio-backend", id);
}

/* Limit the drive of device @id to @iops requests per second, 0: none */
static void lifecycle_throttle(const char *id, int iops)
{
    g_autofree char *path = lifecycle_vdev_path(id);

    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'block_set_io_throttle',"
                             "  'arguments': { 'id': %s, 'iops': %d,"
                             "    'iops_rd': 0, 'iops_wr': 0, 'bps': 0,"
                             "    'bps_rd': 0, 'bps_wr': 0 } }",
                             path, iops);
}

/*
 * Wait until device @id took all of @b off @vq, then check that it still
 * holds them all but the one throttling may have let through (what the
 * device took and has not used yet is "inuse").
 */
static void lifecycle_check_held(const char *id, QVirtQueue *vq, Batch *b)
{
    g_autofree char *path = lifecycle_vdev_path(id);
    uint16_t avail = qtest_readw(global_qtest, vq->avail + 2);
    gint64 start = g_get_monotonic_time();
    QDict *st;

    for (;;) {
        st = qtest_qmp_assert_success_ref(global_qtest,
                 "{ 'execute': 'x-query-virtio-queue-status',"
                 "  'arguments': { 'path': %s, 'queue': %d } }",
                 path, vq->index);
        if (qdict_get_int(st, "last-avail-idx") == avail) {
            break;
        }
        qobject_unref(st);
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(1000);
    }
    g_assert_cmpint(qdict_get_int(st, "inuse"), >=, b->nreqs - 1);
    qobject_unref(st);
}

/*
 * Throttle device @id and kick a batch into @vq that it holds: writes,
 * every fourth request a read, with gaps between them so that the device
 * cannot merge them.
 */
static void lifecycle_kick_held(QVirtioDevice *dev, QGuestAllocator *alloc,
                                QVirtQueue *vq, ModelDisk *m, Batch *b,
                                const char *id)
{
    const uint64_t stride = m->size / SECTOR_SIZE / MAX_BATCH;
    int i;

    for (i = 0; i < MAX_BATCH; i++) {
        uint32_t type = i % 4 == 3 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
        uint64_t sector = i * stride + rand_range(0, stride / 2 - 1);
        uint32_t nsectors = rand_range(1, stride / 2);
        unsigned layout = rand_range(0, 2) ? 0 : LAYOUT_INDIRECT;

        g_assert_true(batch_add(dev, alloc, vq, m, b, type, sector,
                                nsectors * SECTOR_SIZE, layout));
    }
    lifecycle_throttle(id, 1);
    batch_kick(dev, vq, b);
    lifecycle_check_held(id, vq, b);
}

/* Start @dev (device @id) on @m, some random I/O, then a held batch */
static QVirtQueue *lifecycle_start_held(QVirtioDevice *dev,
                                       QGuestAllocator *alloc, ModelDisk *m,
                                       Batch *b, const char *id)
{
    QVirtQueue *vq;

    model_start_device(dev, alloc, m, &vq, 1);
    model_random_io(dev, alloc, m, &vq, 1, LC_NUM_REQUESTS);
    lifecycle_kick_held(dev, alloc, vq, m, b, id);
    return vq;
}

/*
 * @event drained the drive and left the device unable to use the rest of
 * @b (reset, unplugged): what it used must be right, nothing more may
 * come, and the image must hold every write of the batch.
 */
static void lifecycle_collect_held(QGuestAllocator *alloc, QVirtQueue *vq,
                                   ModelDisk *m, Batch *b, const char *event)
{
    g_test_message("%d of %d heads used before the %s",
                   batch_collect(vq, b), b->nreqs, event);
    vq_check_quiet(vq);
    model_check_image(m);
    batch_free(alloc, vq, b);
}

/*
 * Unplug hot-plugged @hp, as an ACPI guest does it, until DEVICE_DELETED,
 * with batch @b held on the last of its @nvqs queues @vqs on @m.
 */
static void lifecycle_unplug_held(QVirtioPCIDevice *hp, QGuestAllocator *alloc,
                                  QVirtQueue **vqs, int nvqs, ModelDisk *m,
                                  Batch *b)
{
    int i;

    qpci_unplug_acpi_device_test(global_qtest, "drv1", LC_SLOT_HP);
    lifecycle_collect_held(alloc, vqs[nvqs - 1], m, b, "unplug");
    for (i = 0; i < nvqs; i++) {
        qvirtqueue_cleanup(hp->vdev.bus, vqs[i], alloc);
    }
    qos_object_destroy((QOSGraphObject *)hp);
}

/*
 * Hot-plug virtio-blk-pci drv1 on @drive in the hotplug slot, with the
 * properties in @props, and start it up to feature negotiation.
 */
static QVirtioPCIDevice *lifecycle_plug(QPCIBus *bus, const char *drive,
                                        QDict *props)
{
    QVirtioPCIDevice *dev;

    qdict_put_str(props, "id", "drv1");
    qdict_put_str(props, "drive", drive);
    qdict_put_str(props, "addr", stringify(LC_SLOT_HP) ".0");
    qtest_qmp_device_add_qdict(bus->qts, "virtio-blk-pci", props);
    qobject_unref(props);

    dev = virtio_pci_new(bus, &(QPCIAddress) {
                                  .devfn = QPCI_DEVFN(LC_SLOT_HP, 0) });
    g_assert_nonnull(dev);
    g_assert_cmpint(dev->vdev.device_type, ==, VIRTIO_ID_BLOCK);
    qvirtio_pci_device_enable(dev);
    qvirtio_start_device(&dev->vdev);
    return dev;
}

static void test_lifecycle_reset(void *obj, void *data,
                                 QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0");
    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(global_qtest, "RESET");
    lifecycle_collect_held(alloc, vq, disk, b, "reset");
    qvirtqueue_cleanup(dev->bus, vq, alloc);

    /* BARs and bus mastering went with the reset: start from scratch */
    qvirtio_pci_device_enable(pdev);
    qvirtio_start_device(dev);
    model_start_device(dev, alloc, disk, &vq, 1);
    lifecycle_throttle("drv0", 0);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_lifecycle_device_del(void *obj, void *data,
                                      QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    const char *iothread = data;
    g_autofree Batch *b = g_new0(Batch, 1);
    QDict *props = qdict_new();
    QVirtioPCIDevice *hp;
    QVirtQueue *vq;

    if (pdev->pdev->bus->not_hotpluggable) {
        qobject_unref(props);
        g_test_skip("pci bus does not support hotplug");
        return;
    }
    if (iothread) {
        qdict_put_str(props, "iothread", iothread);
    }
    hp = lifecycle_plug(pdev->pdev->bus, "drive1", props);
    vq = lifecycle_start_held(&hp->vdev, alloc, disk1, b, "drv1");
    lifecycle_unplug_held(hp, alloc, &vq, 1, disk1, b);
}

static void test_lifecycle_resize(void *obj, void *data,
                                  QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0");

    /* block_resize drains the node, so the batch completes */
    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'block_resize',"
                             "  'arguments': { 'node-name': 'disk0',"
                             "                 'size': %d } }",
                             LC_DISK_SIZE + LC_GROWTH);
    batch_wait(dev, vq, b);
    vq_check_quiet(vq);
    batch_free(alloc, vq, b);
    model_disk_resize(disk, LC_DISK_SIZE + LC_GROWTH);
    model_check_image(disk);
    g_assert_cmpuint(qvirtio_config_readq(dev, 0), ==,
                     disk->size / SECTOR_SIZE);

    /* all of the disk, the new end too */
    lifecycle_throttle("drv0", 0);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * The device's BlockBackend refuses to leave the AioContext of its
 * iothread, even when forced, and refuses before it drains anything.
 */
static void test_lifecycle_set_iothread(void *obj, void *data,
                                        QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;
    QDict *rsp, *err;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0");

    rsp = qtest_qmp(global_qtest,
                    "{ 'execute': 'x-blockdev-set-iothread',"
                    "  'arguments': { 'node-name': 'disk0',"
                    "                 'iothread': 'iothread1',"
                    "                 'force': true } }");
    err = qdict_get_qdict(rsp, "error");
    g_assert_nonnull(err);
    g_assert_cmpstr(qdict_get_str(err, "class"), ==, "GenericError");
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==,
                    "Cannot change iothread of active block backend");
    qobject_unref(rsp);
    lifecycle_check_held("drv0", vq, b);

    /* lifting the limit drains the drive */
    lifecycle_throttle("drv0", 0);
    batch_wait(dev, vq, b);
    vq_check_quiet(vq);
    batch_free(alloc, vq, b);
    model_check_image(disk);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * Random I/O in flight on all queues of a device whose queues two
 * iothreads share, then an unplug with a batch held on the last queue.
 */
static void test_lifecycle_vq_mapping(void *obj, void *data,
                                      QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vqs[LC_NUM_QUEUES];
    QVirtioPCIDevice *hp;
    QVirtioDevice *dev;

    if (pdev->pdev->bus->not_hotpluggable) {
        g_test_skip("pci bus does not support hotplug");
        return;
    }
    hp = lifecycle_plug(pdev->pdev->bus, "drive1", qdict_from_jsonf_nofail(
                            "{ 'num-queues': %d,"
                            "  'iothread-vq-mapping': ["
                            "    { 'iothread': 'iothread0' },"
                            "    { 'iothread': 'iothread1' } ] }",
                            LC_NUM_QUEUES));
    dev = &hp->vdev;
    model_start_device(dev, alloc, disk1, vqs, LC_NUM_QUEUES);
    model_exercise(dev, alloc, disk1, vqs, LC_NUM_QUEUES, 2 * LC_NUM_REQUESTS);

    lifecycle_kick_held(dev, alloc, vqs[LC_NUM_QUEUES - 1], disk1, b,
                        "drv1");
    lifecycle_unplug_held(hp, alloc, vqs, LC_NUM_QUEUES, disk1, b);
}

/*
 * Node @node is in the AioContext of @iothread: a device's disk refuses
 * to move (see set-iothread-refused), but a "move" into the AioContext it
 * is already in succeeds without doing anything.
 */
static void lifecycle_assert_node_in(const char *node, const char *iothread)
{
    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'x-blockdev-set-iothread',"
                             "  'arguments': { 'node-name': %s,"
                             "                 'iothread': %s,"
                             "                 'force': true } }",
                             node, iothread);
}

/*
 * QEMU 10.0 keeps a device's disk in the AioContext the device put it in
 * (see set-iothread-refused); what moves a disk to another iothread is
 * unplugging its device and plugging one with the other iothread. Do it
 * with a batch in flight in the first iothread, then check the disk
 * whole through the second.
 */
static void test_lifecycle_move_iothread(void *obj, void *data,
                                         QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtioPCIDevice *hp;
    QVirtQueue *vq;

    if (pdev->pdev->bus->not_hotpluggable) {
        g_test_skip("pci bus does not support hotplug");
        return;
    }
    hp = lifecycle_plug(pdev->pdev->bus, "disk2",
                        qdict_from_jsonf_nofail("{ 'iothread': 'iothread0' }"));
    vq = lifecycle_start_held(&hp->vdev, alloc, disk2, b, "drv1");
    lifecycle_assert_node_in("disk2", "iothread0");
    lifecycle_unplug_held(hp, alloc, &vq, 1, disk2, b);

    hp = lifecycle_plug(pdev->pdev->bus, "disk2",
                        qdict_from_jsonf_nofail("{ 'iothread': 'iothread1' }"));
    model_start_device(&hp->vdev, alloc, disk2, &vq, 1);
    lifecycle_assert_node_in("disk2", "iothread1");
    model_exercise(&hp->vdev, alloc, disk2, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(hp->vdev.bus, vq, alloc);
    qos_object_destroy((QOSGraphObject *)hp);
}

/*
 * Without and with an iothread for the device of the qos graph and, as
 * the test's argument, for the one it hot-plugs.
 */
static void register_lifecycle_tests(void)
{
    QOSGraphTestOptions opts = {
        .before = lifecycle_setup,
    };

    qos_add_test("lifecycle/system-reset-in-flight", "virtio-blk-pci",
                 test_lifecycle_reset, &opts);
    qos_add_test("lifecycle/device-del-in-flight", "virtio-blk-pci",
                 test_lifecycle_device_del, &opts);
    qos_add_test("lifecycle/block-resize-under-load", "virtio-blk-pci",
                 test_lifecycle_resize, &opts);
    qos_add_test("lifecycle/iothread-vq-mapping", "virtio-blk-pci",
                 test_lifecycle_vq_mapping, &opts);
    qos_add_test("lifecycle/move-to-other-iothread", "virtio-blk-pci",
                 test_lifecycle_move_iothread, &opts);

    opts.arg = (void *)"iothread0";
    opts.edge.extra_device_opts = "iothread=iothread0";
    qos_add_test("lifecycle/system-reset-in-flight-iothread",
                 "virtio-blk-pci", test_lifecycle_reset, &opts);
    qos_add_test("lifecycle/device-del-in-flight-iothread",
                 "virtio-blk-pci", test_lifecycle_device_del, &opts);
    qos_add_test("lifecycle/block-resize-under-load-iothread",
                 "virtio-blk-pci", test_lifecycle_resize, &opts);
    qos_add_test("lifecycle/set-iothread-refused", "virtio-blk-pci",
                 test_lifecycle_set_iothread, &opts);
}

static void register_virtio_blk_model_test(void)
{
    QOSGraphTestOptions opts = {
        .before = model_setup,
    };

    qos_add_test("model-rw", "virtio-blk", test_model_rw, &opts);

    opts.arg = (void *)"iothread0";
    opts.edge.extra_device_opts = "iothread=iothread0";
    qos_add_test("model-rw-iothread", "virtio-blk-pci", test_model_rw_pci,
                 &opts);

    register_fault_tests();
    register_lifecycle_tests();
}

libqos_init(register_virtio_blk_model_test);

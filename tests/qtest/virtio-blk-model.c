/*
 * A reference model of a virtio-blk disk, shared by its qtests
 *
 * The model keeps a copy of the disk in memory. Batches of reads, writes
 * and flushes go to the device with random descriptor layouts (1 to 64
 * data descriptors, direct or indirect, header and status in their own
 * descriptors or sharing one with data, buffers at odd guest addresses),
 * and every completion is checked: each head used exactly once, with the
 * right length and status, and each read byte for byte against the model.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/bswap.h"
#include "qobject/qjson.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"
#include "standard-headers/linux/virtio_ring.h"
#include "virtio-blk-model.h"
#include "virtio-blk-ring.h"

#define MAX_BATCH_BYTES     (8 * 1024 * 1024)
#define MAX_REDRAWS         8

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
void model_disk_create(ModelDisk **pm, uint64_t size)
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
void model_disk_resize(ModelDisk *m, uint64_t size)
{
    m->data = g_realloc(m->data, size);
    if (size > m->size) {
        memset(m->data + m->size, 0, size - m->size);
    }
    m->size = size;
}

/* A raw drive @id on the image of @m, with more -drive options in @opts */
void model_drive_append(GString *cmd_line, const char *id,
                        ModelDisk *m, const char *opts)
{
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=%s,file=%s,"
                           "format=raw,auto-read-only=off%s ",
                           id, m->path, opts);
}

/*
 * Set up the first @nvqs virtqueues of a device that serves @m, with
 * VIRTIO_RING_F_EVENT_IDX if @event_idx (the device offers it).
 */
/*
 * VIRTIO_F_IN_ORDER negotiated (the device has in_order=on): the device
 * must use the buffers in the order they were made available (2.7.9)
 */
static bool used_in_order;

void model_start_device(QVirtioDevice *dev, QGuestAllocator *alloc,
                        ModelDisk *m, QVirtQueue **vqs, int nvqs,
                        bool event_idx)
{
    uint64_t features = qvirtio_get_features(dev);
    int i;

    g_assert_cmphex(features & (1ull << VIRTIO_RING_F_INDIRECT_DESC), !=, 0);
    g_assert_cmphex(features & (1ull << VIRTIO_RING_F_EVENT_IDX), !=, 0);
    features &= ~(QVIRTIO_F_BAD_FEATURE | (1ull << VIRTIO_BLK_F_SCSI));
    if (!event_idx) {
        features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
    }
    qvirtio_set_features(dev, features);
    used_in_order = features & (1ull << VIRTIO_F_IN_ORDER);
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

/*
 * Hot-plug virtio-blk-pci @id on @drive in MODEL_HOTPLUG_SLOT of @bus,
 * with the properties in @props (taken), and start it up to feature
 * negotiation.
 */
QVirtioPCIDevice *model_plug_device(QPCIBus *bus, const char *id,
                                    const char *drive, QDict *props)
{
    QVirtioPCIDevice *dev;

    qdict_put_str(props, "id", id);
    qdict_put_str(props, "drive", drive);
    qdict_put_str(props, "addr", stringify(MODEL_HOTPLUG_SLOT) ".0");
    qtest_qmp_device_add_qdict(bus->qts, "virtio-blk-pci", props);
    qobject_unref(props);

    dev = virtio_pci_new(bus, &(QPCIAddress) {
                                  .devfn = QPCI_DEVFN(MODEL_HOTPLUG_SLOT, 0) });
    g_assert_nonnull(dev);
    g_assert_cmpint(dev->vdev.device_type, ==, VIRTIO_ID_BLOCK);
    qvirtio_pci_device_enable(dev);
    qvirtio_start_device(&dev->vdev);
    return dev;
}

/*
 * Hot-plug @id on @drive as model_plug_device() does, with @nqueues
 * queues that iothread0 and iothread1 (which the test's machine must
 * have) share through iothread-vq-mapping. Returns NULL, the test
 * skipped, if @bus takes no hot-plugged device.
 */
QVirtioPCIDevice *model_plug_mapped_device(QPCIBus *bus, const char *id,
                                           const char *drive, int nqueues)
{
    if (bus->not_hotpluggable) {
        g_test_skip("pci bus does not support hotplug");
        return NULL;
    }
    return model_plug_device(bus, id, drive, qdict_from_jsonf_nofail(
                                 "{ 'num-queues': %d,"
                                 "  'iothread-vq-mapping': ["
                                 "    { 'iothread': 'iothread0' },"
                                 "    { 'iothread': 'iothread1' } ] }",
                                 nqueues));
}

uint32_t model_rand_range(uint32_t lo, uint32_t hi_inclusive)
{
    return g_test_rand_int_range(lo, hi_inclusive + 1);
}

/* Sizes spread evenly over powers of two, so small requests dominate. */
static uint32_t rand_sectors(void)
{
    int bits = model_rand_range(0, 11);       /* 2^11 sectors = 1 MiB */
    uint32_t lo = 1u << bits;
    uint32_t hi = MIN(2 * lo - 1, MAX_REQ_SECTORS);

    return model_rand_range(lo, hi);
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
        uint32_t piece = model_rand_range(1, MIN(len - (n - 1),
                                                 MAX(1, 2 * len / n)));

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
    bool fixed = r->layout & (LAYOUT_ONE_DATA_DESC | LAYOUT_MAX_DATA_DESCS);
    uint32_t pad1 = share || model_rand_range(0, 1) ? 0
                    : model_rand_range(1, 63);
    uint32_t pad2 = share || model_rand_range(0, 1) ? 0
                    : model_rand_range(1, 63);
    uint64_t hdr, data, status;
    bool is_write = r->type == VIRTIO_BLK_T_OUT;
    bool has_data = r->nbytes > 0;
    int ndata = has_data ? model_rand_range(1, MIN(MAX_DATA_DESCS, r->nbytes))
                         : 0;

    if (has_data && (r->layout & LAYOUT_ONE_DATA_DESC)) {
        ndata = 1;
    } else if (has_data && (r->layout & LAYOUT_MAX_DATA_DESCS)) {
        ndata = MIN(MAX_DATA_DESCS, r->nbytes);
    }
    uint8_t hdr_bytes[16];

    /* Odd start addresses too: nothing says buffers are aligned. */
    r->alloc_addr = guest_alloc(alloc, 16 + pad1 + r->nbytes + pad2 + 1 + 8);
    hdr = r->alloc_addr + model_rand_range(0, 7);
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
    if (is_write && !fixed && pad1 == 0 &&
        (share || model_rand_range(0, 3) == 0)) {
        /* header and the first bytes of data in one descriptor */
        uint32_t first = model_rand_range(1, r->nbytes);

        add_seg(r, hdr, 16 + first, false);
        add_split_segs(r, data + first, r->nbytes - first, ndata, false);
    } else {
        if (!fixed && model_rand_range(0, 7) == 0) {
            add_seg(r, hdr, 8, false);  /* header split in two */
            add_seg(r, hdr + 8, 8, false);
        } else {
            add_seg(r, hdr, 16, false);
        }
        if (has_data) {
            add_split_segs(r, data, r->nbytes, ndata, !is_write);
        }
    }

    if (!is_write && !fixed && has_data && pad2 == 0 &&
        (share || model_rand_range(0, 3) == 0)) {
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

/* Make all heads of the batch available at once, and notify the device */
void batch_kick(QVirtQueue *vq, Batch *b)
{
    uint16_t heads[MAX_RING];
    int i;

    for (i = 0; i < b->nreqs; i++) {
        heads[i] = b->reqs[i].head;
    }
    vbr_publish(global_qtest, vq, heads, b->nreqs);
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

/*
 * Each head of the batch must come back exactly once; with
 * VIRTIO_F_IN_ORDER, in the order batch_kick() made them available.
 */
void batch_wait(QVirtQueue *vq, Batch *b)
{
    uint32_t head, len;
    int i;

    for (i = 0; i < b->nreqs; i++) {
        g_assert_true(vbr_wait_used(global_qtest, vq, &head, &len));
        if (used_in_order) {
            g_assert_cmpuint(head, ==, b->reqs[i].head);
        }
        batch_complete(b, head, len);
    }
}

bool model_used_in_order(void)
{
    return used_in_order;
}

/*
 * What the device used of the batch so far, where it may never use the
 * rest (it was reset or unplugged). Returns how many heads it used.
 */
int batch_collect(QVirtQueue *vq, Batch *b)
{
    uint32_t head, len;
    int n = 0;

    while (qvirtqueue_get_buf(global_qtest, vq, &head, &len)) {
        batch_complete(b, head, len);
        n++;
    }
    return n;
}

/* Nothing (more) is used on @vq for a while. */
void model_check_quiet(QVirtQueue *vq)
{
    g_usleep(100 * 1000);
    g_assert_cmpuint(qtest_readw(global_qtest, vq->used + 2), ==,
                     vq->last_used_idx);
}

void batch_free(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b)
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
 *
 * The ring has vq->size descriptors, as many as the device offered (QEMU
 * 10.0 offers 1024, later ones queue-size, 256 by default), and a request
 * takes one at least, in an indirect table. A request goes in direct
 * descriptors only where that leaves one for each request the batch may
 * still take, so that a batch of up to MAX(max_reqs, MAX_BATCH) requests
 * fits in any ring at least that large.
 */
bool batch_add(QVirtioDevice *dev, QGuestAllocator *alloc,
               QVirtQueue *vq, ModelDisk *m, Batch *b, uint32_t type,
               uint64_t sector, uint32_t nbytes, unsigned layout)
{
    Request *r = &b->reqs[b->nreqs];
    uint64_t offset = sector * SECTOR_SIZE;
    /* requests the batch may take after this one, as many as fit */
    const int cap = MIN(MAX(b->max_reqs, MAX_BATCH), vq->size);
    const uint32_t later = cap > b->nreqs + 1 ? cap - b->nreqs - 1 : 0;

    if (b->nreqs == MAX(b->max_reqs, MAX_BATCH) ||
        b->ndescs == vq->size ||
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

    /* Direct chains share the ring; past what it can spare, go indirect. */
    if (b->ndescs + r->nsegs + later > vq->size) {
        r->layout |= LAYOUT_INDIRECT;
    }
    request_publish(dev, alloc, vq, r);
    b->ndescs += request_ring_descs(r);
    b->nbytes += nbytes;
    b->nreqs++;
    return true;
}

void batch_run(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b)
{
    batch_kick(vq, b);
    batch_wait(vq, b);
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
        uint32_t type = model_rand_range(0, 1) ? VIRTIO_BLK_T_OUT
                                         : VIRTIO_BLK_T_IN;
        uint64_t sector = model_rand_range(0, disk_sectors - nsectors);
        unsigned layout = model_rand_range(0, 2) ? 0 : LAYOUT_INDIRECT;

        if (model_rand_range(0, 31) == 0) {
            type = VIRTIO_BLK_T_FLUSH;
            sector = 0;
            nsectors = 0;
        } else if (prev && prev->nbytes && model_rand_range(0, 2) == 0 &&
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
void model_random_io(QVirtioDevice *dev, QGuestAllocator *alloc,
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
                                      MIN(model_rand_range(1, MAX_BATCH),
                                          nreqs - done));
        }
        for (q = 0; q < nvqs; q++) {
            batch_kick(vqs[q], &round[q]);
        }
        for (q = 0; q < nvqs; q++) {
            batch_wait(vqs[q], &round[q]);
            batch_free(alloc, vqs[q], &round[q]);
        }
    }
}

/* Read the whole disk back through the device, 1 MiB per request. */
void model_read_back(QVirtioDevice *dev, QGuestAllocator *alloc,
                     ModelDisk *m, QVirtQueue *vq)
{
    g_autofree Batch *b = g_new0(Batch, 1);
    uint64_t sector = 0;

    while (sector < m->size / SECTOR_SIZE) {
        if (!batch_add(dev, alloc, vq, m, b, VIRTIO_BLK_T_IN, sector,
                       MIN(MAX_REQ_SECTORS, m->size / SECTOR_SIZE - sector)
                       * SECTOR_SIZE, 0)) {
            batch_run(alloc, vq, b);
            continue;
        }
        sector += MAX_REQ_SECTORS;
    }
    batch_run(alloc, vq, b);
}

/* The image file must hold exactly the model: nothing lost, nothing extra. */
void model_check_image(ModelDisk *m)
{
    g_autofree uint8_t *file = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(m->path, (char **)&file, &len, NULL));
    g_assert_cmpuint(len, ==, m->size);
    g_assert_true(memcmp(file, m->data, m->size) == 0);
}

/* Random I/O, then the whole disk back through the device and the file */
void model_exercise(QVirtioDevice *dev, QGuestAllocator *alloc,
                    ModelDisk *m, QVirtQueue **vqs, int nvqs,
                    int nreqs)
{
    model_random_io(dev, alloc, m, vqs, nvqs, nreqs);
    model_read_back(dev, alloc, m, vqs[0]);
    model_check_image(m);
}

/*
 * Wait for the migration @qts takes part in, as source or target, to end
 * in @want: "completed" or "failed".
 */
void model_migrate_wait(QTestState *qts, const char *want)
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

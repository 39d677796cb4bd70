/*
 * A reference model of a virtio-blk disk, shared by its qtests
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VIRTIO_BLK_MODEL_H
#define VIRTIO_BLK_MODEL_H

#include "libqos/qgraph.h"
#include "libqos/virtio-blk.h"
#include "libqos/virtio-pci.h"

#define DISK_SIZE           (32 * 1024 * 1024)
#define SECTOR_SIZE         512
#define MAX_REQ_SECTORS     (1024 * 1024 / SECTOR_SIZE)
#define MAX_BATCH           16      /* requests of a batch by default */
#define MAX_RING            256     /* the largest ring a batch can fill */
#define MAX_DATA_DESCS      64
#define TIMEOUT_US          (30 * 1000 * 1000)
#define MODEL_HOTPLUG_SLOT  0x06    /* a hotplug slot of the pc machine */

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
    /*
     * The header and the status in descriptors of their own, the data in
     * exactly one, or exactly MAX_DATA_DESCS (one per byte if fewer): the
     * device then sees a known number of data buffers.
     */
    LAYOUT_ONE_DATA_DESC = 4,
    LAYOUT_MAX_DATA_DESCS = 8,
};

typedef struct Batch {
    Request reqs[MAX_RING];
    int nreqs;
    int max_reqs;               /* above MAX_BATCH: a batch that fills a ring */
    uint32_t ndescs;            /* ring descriptors used by the batch */
    uint64_t nbytes;
} Batch;

void model_disk_create(ModelDisk **pm, uint64_t size);
void model_disk_resize(ModelDisk *m, uint64_t size);
void model_drive_append(GString *cmd_line, const char *id,
                        ModelDisk *m, const char *opts);
void model_start_device(QVirtioDevice *dev, QGuestAllocator *alloc,
                        ModelDisk *m, QVirtQueue **vqs, int nvqs,
                        bool event_idx);
QVirtioPCIDevice *model_plug_device(QPCIBus *bus, const char *id,
                                    const char *drive, QDict *props);
QVirtioPCIDevice *model_plug_mapped_device(QPCIBus *bus, const char *id,
                                           const char *drive, int nqueues);
uint32_t model_rand_range(uint32_t lo, uint32_t hi_inclusive);
bool model_used_in_order(void);

bool batch_add(QVirtioDevice *dev, QGuestAllocator *alloc,
               QVirtQueue *vq, ModelDisk *m, Batch *b, uint32_t type,
               uint64_t sector, uint32_t nbytes, unsigned layout);
void batch_kick(QVirtQueue *vq, Batch *b);
void batch_wait(QVirtQueue *vq, Batch *b);
int batch_collect(QVirtQueue *vq, Batch *b);
void batch_free(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b);
void batch_run(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b);
void model_check_quiet(QVirtQueue *vq);

void model_random_io(QVirtioDevice *dev, QGuestAllocator *alloc,
                     ModelDisk *m, QVirtQueue **vqs, int nvqs,
                     int nreqs);
void model_read_back(QVirtioDevice *dev, QGuestAllocator *alloc,
                     ModelDisk *m, QVirtQueue *vq);
void model_check_image(ModelDisk *m);
void model_migrate_wait(QTestState *qts, const char *want);
void model_exercise(QVirtioDevice *dev, QGuestAllocator *alloc,
                    ModelDisk *m, QVirtQueue **vqs, int nvqs,
                    int nreqs);

#endif

/*
 * Virtqueue accesses the virtio-blk qtests share where libqos has none
 *
 * Raw descriptors (the hostile test writes malformed ones on purpose),
 * several heads made available with one avail->idx update, a wait for
 * the used ring that sleeps between polls, and reads of QEMU's trace log.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VIRTIO_BLK_RING_H
#define VIRTIO_BLK_RING_H

#include "libqtest.h"
#include "libqos/virtio.h"

/* One descriptor as the driver writes it, valid or not */
typedef struct VBRDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VBRDesc;

void vbr_desc_write(QTestState *qts, uint64_t table, int i, const VBRDesc *d);
void vbr_chain_write(QTestState *qts, uint64_t table, int first,
                     const VBRDesc *d, int n);
bool vbr_publish(QTestState *qts, QVirtQueue *vq, const uint16_t *heads,
                 int n);
bool vbr_wait_used(QTestState *qts, QVirtQueue *vq, uint32_t *head,
                   uint32_t *len);
char **vbr_read_trace(QTestState *qts, const char *log);
const char *vbr_trace_event(const char *line, const char *name);
int64_t vbr_trace_field(const char *fields, const char *key);
int vbr_count_events(QTestState *qts, const char *log, const char *name,
                     uint64_t *sum);

#endif

#!/usr/bin/env python3
"""Read per-thread counts out of a callgrind run of QEMU.

usage: p2-callgrind.py QEMU_BINARY CALLGRIND_OUT_FILE...

The files are one run's per-thread dumps (valgrind --tool=callgrind
--separate-threads=yes --dump-instr=yes --compress-strings=no
--compress-pos=no). Counts are given for three sets of threads:

  iothread  the thread whose call tree contains iothread_run; of those
            (the QMP monitor has an iothread too) the one that executed
            the most instructions
  main      the thread whose call tree contains main_loop_wait: under
            qtest (no irqfd) it injects the device's interrupts
  all       every thread of the run, those two included

Prints, one per line, "<set> <name> <count>":

  ir              the threads' own total of executed instructions
  zero_fill_ir    of those, the instructions that zero-fill the stack
                  arrays virtqueue_pop() maps a chain into
                  (-ftrivial-auto-var-init): every `rep stos` in the
                  functions of FUNCS that hold them, counted per
                  iteration, plus everything executed by their calls to
                  memset; their addresses come from objdump of the binary
  block_ir        of ir, the instructions of the block layer: blk_aio_*
                  and below (block/, block.c, include/block/, the AIOCB
                  cache and completion ring, coroutines, aio-wait,
                  throttling, the block trace points), by the source
                  file each instruction comes from (inlined code
                  included); ir - block_ir is the device's share as the
                  virtio-blk rewrite issue counts it
  loop_ir         of that device share, QEMU's event loop: util/async.c,
                  aio-posix.c, fdmon, lockcnt, timers, event notifiers,
                  the iothread and main-loop functions (the C library,
                  stock's zero-fill memset() included, counts in the
                  device's share)
  notify_ir       the instructions (inclusive) of virtio's guest-notifier
                  handler, virtio_queue_guest_notifier_read(): with no
                  irqfd under qtest, the main loop injects the device's
                  interrupts there; the rest of the main loop's count is
                  mostly the qtest protocol of the load generator
  notify_calls    how many times that handler ran
  locked          of ir, the instructions that lock a cache line: those
                  with a lock prefix, xchg with a memory operand (locked
                  without one) and mfence, by their address in the
                  binary or library objdump finds them in.  Each costs
                  tens of cycles where most cost one: the count tells
                  how much of the CPU time that instructions do not
                  explain goes to atomic operations and barriers
  malloc, calloc, realloc, free, aligned_alloc
                  calls into the C library's allocator from outside the C
                  library (so that realloc calling malloc counts once);
                  aligned_alloc sums posix_memalign, memalign,
                  aligned_alloc, valloc

and "zero_fill_sites <n>", how many such instructions objdump found. A
binary in which none is found is an error: the fill would silently count
as work. A run in which none of them executed counts 0: the fork's
virtio-blk pops with virtqueue_pop_into(), which has no such arrays.
"""

import os
import re
import subprocess
import sys

# where virtqueue_pop()'s 1024-entry stack arrays live: stock 10.0.13 has
# them in its split and packed pops, the fork in virtqueue_pop() itself
FUNCS = ('virtqueue_split_pop', 'virtqueue_packed_pop', 'virtqueue_pop')
# functions that tell the iothread and the main loop's thread
MARKS = ('iothread_run', 'main_loop_wait')
# the handler through which the main loop injects the device's interrupts
NOTIFY_FUNC = 'virtio_queue_guest_notifier_read'
COUNTS = ('ir', 'zero_fill_ir', 'block_ir', 'loop_ir', 'notify_ir',
          'notify_calls', 'locked', 'malloc', 'calloc', 'realloc', 'free',
          'aligned_alloc')
# a lock prefix, xchg with a memory operand, mfence (objdump -d syntax)
LOCKED_INSN = re.compile(r'lock |xchg\s+[^,]*\(|xchg\s+\S+,\S*\(|mfence')
# Source files, relative to the source tree, by share (see the docstring)
BLOCK_FILES = re.compile(r'^(block/|block\.c$|blockjob\.c$|include/block/|'
                         r'util/(aiocb|aiocb-batch|aio-wait|throttle|'
                         r'qemu-coroutine[-a-z]*|coroutine-[a-z]+)\.c$|'
                         r'trace/trace-block\.h$)')
LOOP_FILES = re.compile(r'^(util/(async|aio-posix|fdmon-[a-z]+|lockcnt|'
                        r'qemu-timer|event_notifier-posix|main-loop|'
                        r'qemu-thread-posix)\.c$|iothread\.c$|'
                        r'include/qemu/(timer|lockable|thread)\.h$|'
                        r'trace/trace-util\.h$)')
ALLOC_NAMES = {
    'malloc': 'malloc', '__libc_malloc': 'malloc',
    'calloc': 'calloc', '__libc_calloc': 'calloc',
    'realloc': 'realloc', '__libc_realloc': 'realloc',
    'free': 'free', '__libc_free': 'free', 'cfree': 'free',
    'posix_memalign': 'aligned_alloc', 'memalign': 'aligned_alloc',
    '__libc_memalign': 'aligned_alloc', 'aligned_alloc': 'aligned_alloc',
    'valloc': 'aligned_alloc',
}


def die(msg):
    print('p2-callgrind: error: ' + msg, file=sys.stderr)
    sys.exit(1)


def zero_fill_sites(binary):
    """Addresses of the rep stos instructions and memset calls of FUNCS."""
    nm = subprocess.run(['nm', '-S', binary], capture_output=True,
                        text=True, check=True).stdout
    ranges = []
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] in FUNCS:
            start = int(f[0], 16)
            ranges.append((start, start + int(f[1], 16)))
    if not ranges:
        die('none of %s in %s' % (', '.join(FUNCS), binary))
    stos, calls = set(), set()
    for rng in ranges:
        dis = subprocess.run(['objdump', '-d', '--no-show-raw-insn',
                              '--start-address=0x%x' % rng[0],
                              '--stop-address=0x%x' % rng[1], binary],
                             capture_output=True, text=True,
                             check=True).stdout
        for line in dis.splitlines():
            m = re.match(r'\s*([0-9a-f]+):\s+(.*)$', line)
            if not m:
                continue
            addr, insn = int(m.group(1), 16), m.group(2)
            if re.match(r'rep stos', insn):
                stos.add(addr)
            elif re.match(r'call\s+\S+\s+<memset(@plt)?>', insn):
                calls.add(addr)
    if not stos and not calls:
        die('no zero-fill site (rep stos, call memset) found in %s of %s'
            % (', '.join(FUNCS), binary))
    return stos, calls


def locked_sites(obj, cache={}):
    """Addresses of the locked instructions of the object file obj."""
    if obj not in cache:
        sites = set()
        if obj.startswith('/') and os.path.isfile(obj):
            dis = subprocess.run(['objdump', '-d', '--no-show-raw-insn', obj],
                                 capture_output=True, text=True,
                                 check=True).stdout
            for line in dis.splitlines():
                m = re.match(r'\s*([0-9a-f]+):\s+(.*)$', line)
                if m and LOCKED_INSN.match(m.group(2)):
                    sites.add(int(m.group(1), 16))
        cache[obj] = sites
    return cache[obj]


def name(val):
    """A function's name without callgrind's recursion suffix (f'2)."""
    return re.sub(r"'\d+$", '', val)


def share(path):
    """'block', 'loop' or 'device': the share a source file counts in."""
    if path.startswith('.') or path.startswith('/usr/') or path == '???':
        return 'device'         # the C library's own sources, or unknown
    # build/<dir>/../src/X, build/src/X, or a generated build/<dir>/trace/X
    rel = re.sub(r'^.*/src/', '', path)
    rel = re.sub(r'^.*/(trace/trace-[^/]+)$', r'\1', rel)
    if BLOCK_FILES.match(rel):
        return 'block'
    if LOOP_FILES.match(rel):
        return 'loop'
    return 'device'


def parse(path, stos, memset_calls):
    """Counts of one thread's callgrind dump."""
    res = {'ir': None, 'zero_fill_ir': 0, 'block_ir': 0, 'loop_ir': 0,
           'notify_ir': 0, 'notify_calls': 0, 'locked': 0,
           'iothread_run': False,
           'main_loop_wait': False, 'malloc': 0, 'calloc': 0, 'realloc': 0,
           'free': 0, 'aligned_alloc': 0}
    ob = fn = cob = cfn = None
    locked = set()
    fl_share = cur_share = 'device'
    shares = {}
    in_call = False
    with open(path) as f:
        for line in f:
            if line[0] in '0123456789+-*':
                if in_call:
                    # the inclusive cost of the call just described
                    in_call = False
                    pos, cost = line.split()[0], line.split()[-1]
                    if fn in FUNCS and int(pos, 16) in memset_calls:
                        res['zero_fill_ir'] += int(cost)
                    if cfn == NOTIFY_FUNC and fn != NOTIFY_FUNC:
                        res['notify_ir'] += int(cost)
                    cob = None
                    continue
                f3 = line.split()
                if cur_share != 'device' and len(f3) > 1:
                    res[cur_share + '_ir'] += int(f3[-1])
                if len(f3) > 1 and int(f3[0], 16) in locked:
                    res['locked'] += int(f3[-1])
                if fn in FUNCS and int(f3[0], 16) in stos:
                    res['zero_fill_ir'] += int(f3[-1])
                continue
            key, _, val = line.rstrip('\n').partition('=')
            if key in ('fl', 'fi', 'fe'):
                if val not in shares:
                    shares[val] = share(val)
                cur_share = shares[val]
                if key == 'fl':
                    fl_share = cur_share
            elif key == 'ob':
                ob = val
                locked = locked_sites(val)
            elif key == 'fn':
                cur_share = fl_share
                fn = name(val)
                if fn in MARKS:
                    res[fn] = True
            elif key == 'cob':
                cob = val
            elif key == 'cfn':
                cfn = name(val)
                if cfn in MARKS:
                    res[cfn] = True
            elif key == 'calls':
                in_call = True
                if cfn == NOTIFY_FUNC and fn != NOTIFY_FUNC:
                    res['notify_calls'] += int(val.split()[0])
                kind = ALLOC_NAMES.get(cfn)
                callee_ob = cob if cob is not None else ob
                if (kind and callee_ob and '/libc.so' in callee_ob and
                        not (ob and '/libc.so' in ob)):
                    res[kind] += int(val.split()[0])
            elif line.startswith('summary:') or line.startswith('totals:'):
                if res['ir'] is None:
                    res['ir'] = int(line.split()[1])
    if res['ir'] is None:
        die('no summary in ' + path)
    return res


def main():
    if len(sys.argv) < 3:
        die('usage: p2-callgrind.py QEMU_BINARY CALLGRIND_OUT_FILE...')
    stos, memset_calls = zero_fill_sites(sys.argv[1])
    threads = [parse(path, stos, memset_calls) for path in sys.argv[2:]]
    sets = {'all': threads}
    for role, mark in (('iothread', 'iothread_run'),
                       ('main', 'main_loop_wait')):
        marked = [t for t in threads if t[mark]]
        if not marked:
            die('no thread ran ' + mark)
        sets[role] = [max(marked, key=lambda t: t['ir'])]
    print('zero_fill_sites', len(stos) + len(memset_calls))
    for role in ('iothread', 'main', 'all'):
        for k in COUNTS:
            print(role, k, sum(t[k] for t in sets[role]))


main()

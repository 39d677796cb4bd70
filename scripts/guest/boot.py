#!/usr/bin/python3
"""Boot the fio test guest (scripts/guest/build-guest.sh) on a QEMU binary.

The guest has one virtio-blk-pci disk served by an iothread (io0). The fio
jobs named (see JOBS) go to the guest as a job file in fw_cfg; the guest
runs them in order and stops on a console marker before and after each
one, so that the host samples, over exactly that job's window, the CPU
time of the iothread and of the main thread (/proc/PID/task/TID/schedstat
in ns, and stat's utime + stime in clock ticks) and the request counts of
QMP query-blockstats.

KVM is used where it can boot the guest: not where /dev/kvm is missing or
is the nested PVM hypervisor (kvm_pvm), and not when a KVM guest gives no
sign of life within BOOT_TIMEOUT; TCG (multi-threaded) runs it then.

Prints "accel tcg|kvm", "boot time N s" and, per job, lines
"<job> <metric> <value> <unit>". Notes go to stderr. Exit status: 0 when
every job ran without error, 1 when a job failed (fio error or verify
errors), 2 when the guest could not be run.

usage: boot.py --qemu BIN --guest DIR --log FILE --job NAME [--job NAME...]
               (--null SIZE | --disk PATH [--format raw|qcow2] [--read-only])
               [--runtime SECONDS] [--poll-max-ns N]
"""

import argparse
import ctypes
import json
import os
import select
import socket
import subprocess
import sys
import time

BOOT_TIMEOUT = {'kvm': 20, 'tcg': 120}   # seconds to the guest's first marker
JOB_TIMEOUT = 1800                       # seconds per job
TICK_NS = 10**9 // os.sysconf('SC_CLK_TCK')
# the fork's query-stats counters a job reports per request
DEVICE_STATS = ('batches', 'notifications')

# The jobs a caller can name. Timed ones run for --runtime seconds; verify
# writes the whole disk and reads it back; read-pass reads it, for at most
# a minute.
JOBS = {
    'verify': 'rw=write bs=1M iodepth=8 verify=crc32c do_verify=1 '
              'continue_on_error=verify',
    'read-pass': 'rw=read bs=1M iodepth=8 runtime=60',
    'randread-qd1': 'rw=randread bs=4k iodepth=1 time_based=1 runtime={runtime}',
    'randread-qd32': 'rw=randread bs=4k iodepth=32 time_based=1 runtime={runtime}',
    'randread-qd128': 'rw=randread bs=4k iodepth=128 time_based=1 runtime={runtime}',
    'seqwrite-qd32': 'rw=write bs=4k iodepth=32 time_based=1 runtime={runtime}',
    'seqread64k-qd16': 'rw=read bs=64k iodepth=16 time_based=1 runtime={runtime}',
}


class GuestError(Exception):
    pass


def write_jobs(path, names, runtime):
    with open(path, 'w') as f:
        f.write('[global]\nfilename=/dev/vda\ndirect=1\nioengine=libaio\n'
                'group_reporting=1\nlat_percentiles=1\n')
        for name in names:
            options = JOBS[name].format(runtime=runtime).replace(' ', '\n')
            f.write(f'[{name}]\n{options}\n')


def note(msg):
    print(f'guest: {msg}', file=sys.stderr, flush=True)


def io_uring_works():
    """Whether io_uring_setup() succeeds here (seccomp or sysctl may stop it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)    # struct io_uring_params
    fd = libc.syscall(425, 4, params)            # __NR_io_uring_setup
    if fd < 0:
        return False
    os.close(fd)
    return True


def o_direct_works(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


def drive_option(args):
    """The -drive option for the disk, with aio and cache chosen for it."""
    if args.null:
        return f'if=none,id=d0,driver=null-co,size={args.null},read-zeroes=off'
    aio = 'io_uring' if io_uring_works() else 'threads'
    cache = 'none' if o_direct_works(args.disk) else 'writeback'
    if aio != 'io_uring':
        note('io_uring is not available here: aio=threads')
    if cache != 'none':
        note(f'{args.disk} cannot be opened with O_DIRECT: cache=writeback')
    path = args.disk.replace(',', ',,')
    ro = ',readonly=on' if args.read_only else ''
    return f'if=none,id=d0,file={path},format={args.format},aio={aio},cache={cache}{ro}'


def choose_accel():
    """The accelerators to try in order, without KVM where it cannot work."""
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        note('no usable /dev/kvm: using TCG (multi-threaded)')
        return ['tcg']
    if os.path.exists('/sys/module/kvm_pvm'):
        note('/dev/kvm is the nested PVM hypervisor (kvm_pvm), which does not '
             'boot this guest: using TCG (multi-threaded)')
        return ['tcg']
    return ['kvm', 'tcg']


class Qmp:
    def __init__(self, path, proc):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None:
                    raise GuestError(f'QEMU exited with status {proc.returncode}')
                time.sleep(0.05)
        self.file = self.sock.makefile('rw')
        self.file.readline()                     # greeting
        self.command('qmp_capabilities')

    def command(self, name, arguments=None):
        cmd = {'execute': name}
        if arguments:
            cmd['arguments'] = arguments
        self.file.write(json.dumps(cmd) + '\n')
        self.file.flush()
        while True:                              # skip events
            line = self.file.readline()
            if not line:
                raise GuestError(f'QMP closed during {name}')
            reply = json.loads(line)
            if 'return' in reply:
                return reply['return']
            if 'error' in reply:
                raise GuestError(f'QMP {name}: {reply["error"]["desc"]}')


class Guest:
    """One QEMU process running the guest; its console read line by line."""

    def __init__(self, args, accel, drive, jobs):
        self.qmp_path = os.path.join(args.guest, f'qmp-{os.getpid()}.sock')
        self.no_device_stats = False
        self.log = open(args.log, 'a')
        iothread = 'iothread,id=io0'
        if args.poll_max_ns is not None:
            iothread += f',poll-max-ns={args.poll_max_ns}'
        append = 'console=ttyS0 quiet panic=-1'
        if accel == 'kvm':
            cpu = ['-accel', 'kvm', '-cpu', 'host']
        else:
            # The TSC is the only clock that does not drift under TCG.
            cpu = ['-accel', 'tcg,thread=multi', '-cpu', 'max']
            append += ' tsc=reliable clocksource=tsc'
        cmd = [args.qemu, '-name', 'guest,debug-threads=on', '-M', 'pc',
               '-m', '1G', '-smp', '2', *cpu, '-nodefaults', '-display', 'none',
               '-no-reboot', '-serial', 'stdio', '-monitor', 'none',
               '-qmp', f'unix:{self.qmp_path},server=on,wait=off',
               '-kernel', os.path.join(args.guest, 'vmlinuz'),
               '-initrd', os.path.join(args.guest, 'initramfs.img'),
               '-append', append,
               '-fw_cfg', 'name=opt/guest/jobs,file=' + jobs.replace(',', ',,'),
               '-object', iothread, '-drive', drive,
               '-device', 'virtio-blk-pci,drive=d0,iothread=io0' +
               (',' + args.device_opts if args.device_opts else '')]
        self.log.write('$ ' + ' '.join(cmd) + '\n')
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.buf = b''

    def connect(self):
        self.qmp = Qmp(self.qmp_path, self.proc)
        self.iothread_tid = self.thread_named('IO io0')

    def thread_named(self, comm):
        task = f'/proc/{self.proc.pid}/task'
        for tid in os.listdir(task):
            with open(f'{task}/{tid}/comm') as f:
                if f.read().strip() == comm:
                    return int(tid)
        raise GuestError(f'no thread named "{comm}" in QEMU (debug-threads)')

    def readline(self, deadline):
        """The next console line (None at EOF); TimeoutError at the deadline."""
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        line = line.decode(errors='replace').rstrip('\r')
        self.log.write(line + '\n')
        return line

    def marker(self, deadline):
        """The next "@@guest ..." marker's words (fio's output may precede it)."""
        while True:
            line = self.readline(deadline)
            if line is None:
                raise GuestError('the guest stopped unexpectedly')
            if '@@guest ' in line:
                return line[line.index('@@guest ') + 8:].split()

    def ack(self):
        self.proc.stdin.write(b'\n')
        self.proc.stdin.flush()

    def vcpu_tids(self):
        task = f'/proc/{self.proc.pid}/task'
        tids = []
        for tid in os.listdir(task):
            with open(f'{task}/{tid}/comm') as f:
                if f.read().startswith('CPU '):
                    tids.append(int(tid))
        return tids

    def sample(self):
        """CPU time of the iothread, the main thread and the vCPU threads
        together, in ns: exact from schedstat, in clock ticks from stat
        (utime + stime); blockstats."""
        cpu = {}
        threads = [('iothread', [self.iothread_tid]), ('main', [self.proc.pid]),
                   ('vcpu', self.vcpu_tids())]
        for name, tids in threads:
            cpu[name] = cpu[name + '_stat'] = 0
            for tid in tids:
                task = f'/proc/{self.proc.pid}/task/{tid}'
                with open(f'{task}/schedstat') as f:
                    cpu[name] += int(f.read().split()[0])
                with open(f'{task}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                cpu[name + '_stat'] += (int(fields[11]) + int(fields[12])) * TICK_NS
        stats = next(s['stats'] for s in self.qmp.command('query-blockstats')
                     if s.get('device') == 'd0')
        return {**cpu, **stats, **self.device_stats()}

    def device_stats(self):
        """The fork's per-queue virtio-blk counters, summed over the
        queues (docs/statistics-and-coalescing.md): passes and guest
        notifications. Stock has no such provider: nothing."""
        if self.no_device_stats:
            return {}
        try:
            results = self.qmp.command('query-stats',
                                       {'target': 'virtio-blk'})
        except GuestError:
            self.no_device_stats = True
            return {}
        totals = {}
        for result in results:
            for stat in result['stats']:
                if stat['name'] in DEVICE_STATS:
                    key = 'vblk_' + stat['name']
                    totals[key] = totals.get(key, 0) + sum(stat['value'])
        return totals

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)


def report(job, fio, before, after, irqs):
    """Print a job's metrics; return its error count."""
    def out(metric, value, unit):
        print(f'{job} {metric} {value} {unit}', flush=True)

    j = fio['jobs'][0]
    dirs = [j[d] for d in ('read', 'write') if j[d]['total_ios'] > 0]
    errors = j.get('total_err', 0) or (1 if j['error'] else 0)
    out('iops', f"{sum(d['iops'] for d in dirs):.0f}", 'req/s')
    out('bandwidth', f"{sum(d['bw_bytes'] for d in dirs) / 1e6:.1f}", 'MB/s')
    if dirs:
        pct = max(dirs, key=lambda d: d['total_ios'])['lat_ns'].get('percentile')
        if pct:
            out('lat_p50', f"{pct['50.000000'] / 1000:.1f}", 'us')
            out('lat_p99', f"{pct['99.000000'] / 1000:.1f}", 'us')
    out('read_bytes', j['read']['io_bytes'], 'B')
    out('write_bytes', j['write']['io_bytes'], 'B')
    out('errors', errors, 'count')

    delta = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    reqs = delta['rd_operations'] + delta['wr_operations'] + delta['flush_operations']
    out('requests', reqs, 'req')
    # Per request: schedstat (exact), and stat's utime + stime (10 ms ticks).
    for thread in ('iothread', 'main', 'vcpu') if reqs else ():
        for source in ('', '_stat'):
            out(f'{thread}_cpu_per_req{source}',
                f"{delta[thread + source] / reqs / 1000:.1f}", 'us')
    if reqs and irqs is not None:
        out('irqs_per_req', f'{irqs / reqs:.3f}', 'irqs')
    # the fork's own counters: passes over the ring, notifications sent
    if reqs and 'vblk_batches' in delta:
        out('passes_per_req', f"{delta['vblk_batches'] / reqs:.3f}",
            'passes')
        out('notifications_per_req',
            f"{delta['vblk_notifications'] / reqs:.3f}", 'notifications')
    for d in ('rd', 'wr'):
        if delta[f'{d}_operations']:
            out(f'{d}_merged_per_req',
                f"{delta[f'{d}_merged'] / delta[f'{d}_operations']:.3f}", 'merges')
    return errors


def run(guest):
    """Drive the guest through its jobs; return the number of failed jobs."""
    failed = 0
    while True:
        words = guest.marker(time.monotonic() + JOB_TIMEOUT)
        if words[0] == 'done':
            return failed
        if words[0] != 'begin':
            raise GuestError(f'unexpected guest marker: {" ".join(words)}')
        job = words[1]
        before = guest.sample()
        guest.ack()
        words = guest.marker(time.monotonic() + JOB_TIMEOUT)
        after = guest.sample()
        if words[:2] != ['end', job]:
            raise GuestError(f'job {job}: unexpected marker {" ".join(words)}')
        guest.ack()
        if guest.marker(time.monotonic() + 60) != ['json', job]:
            raise GuestError(f'job {job}: no results')
        text = []
        while (line := guest.readline(time.monotonic() + 60)) != '@@guest json-end':
            if line is None:
                raise GuestError(f'job {job}: results cut short')
            text.append(line)
        # fio writes its messages (verify failures) to the file before the
        # JSON, the last one without a newline.
        raw = '\n'.join(text)
        try:
            fio = json.loads(raw[raw.rfind('{', 0, raw.index('"fio version"')):])
        except ValueError:
            raise GuestError(f'job {job}: no results from fio (exit {words[2]})')
        # the guest counts its disk's interrupts (an older image does not)
        irqs = int(words[3]) if len(words) > 3 else None
        errors = report(job, fio, before, after, irqs)
        if errors or words[2] != '0':
            failed += 1
            note(f'job {job} failed: fio exit {words[2]}, {errors} error(s)')


def boot(args, drive, accels):
    """Boot with the first accelerator that works; return the exit status."""
    for accel in accels:
        guest = Guest(args, accel, drive, args.log + '.fio')
        try:
            start = time.monotonic()
            try:
                guest.connect()
                words = guest.marker(start + BOOT_TIMEOUT[accel])
            except (GuestError, TimeoutError) as e:
                why = str(e) or f'no sign of it within {BOOT_TIMEOUT[accel]} s'
                if accel != accels[-1]:
                    note(f'KVM did not boot the guest ({why}): using TCG (multi-threaded)')
                    continue
                raise GuestError(f'the guest did not boot: {why}')
            if words[0] != 'boot':
                raise GuestError(f'unexpected guest marker: {" ".join(words)}')
            print(f'accel {accel}', flush=True)
            print(f'boot time {time.monotonic() - start:.1f} s', flush=True)
            failed = run(guest)
            guest.proc.wait(timeout=60)
            return 1 if failed else 0
        except TimeoutError:
            raise GuestError('a job did not finish in time')
        except subprocess.TimeoutExpired:
            raise GuestError('the guest did not power off')
        finally:
            guest.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--qemu', required=True)
    p.add_argument('--guest', required=True, help='directory of vmlinuz and initramfs.img')
    p.add_argument('--log', required=True, help='console and QEMU messages go here')
    p.add_argument('--job', action='append', required=True, choices=JOBS)
    p.add_argument('--runtime', type=int, default=5, help='seconds per timed job')
    p.add_argument('--null', metavar='SIZE', help='a null-co disk of SIZE')
    p.add_argument('--disk', help='an image file')
    p.add_argument('--format', choices=('raw', 'qcow2'), default='raw')
    p.add_argument('--read-only', action='store_true')
    p.add_argument('--poll-max-ns', type=int)
    p.add_argument('--device-opts', help='more properties of virtio-blk-pci')
    args = p.parse_args()
    if bool(args.null) == bool(args.disk):
        p.error('give one of --null and --disk')

    open(args.log, 'w').close()
    write_jobs(args.log + '.fio', args.job, args.runtime)
    try:
        return boot(args, drive_option(args), choose_accel())
    except GuestError as e:
        print(f'guest: error: {e} (log: {args.log})', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())

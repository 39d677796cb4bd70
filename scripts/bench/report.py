#!/usr/bin/env python3
"""Turn the TSVs of scripts/bench/run.sh into benchmarks.md and .png.

usage: report.py DATA_DIR OUT_DIR

DATA_DIR holds stock-fork.tsv/.meta and, when an A/A run was made,
aa.tsv/.meta. Each TSV line: label, repetition, cell, metric, value, unit.
Two metrics are notes, not numbers: `accel` (the guest's accelerator)
and `cache` (the cache mode a shm cell ran with).
"""

import os
import statistics
import subprocess
import sys
from collections import OrderedDict

LOWER_IS_BETTER = ('per_req', 'lat', 'cpu', 'instr', 'alloc', 'free', 'time')
# Bookkeeping the scripts print, and coarse duplicates: not rows.
HIDDEN = ('read_bytes', 'write_bytes', 'errors', 'requests', 'elapsed',
          'kicks', 'status_ok', 'zero_fill_sites', 'callgrind_n')


def shown(metric):
    return metric not in HIDDEN and not metric.endswith('_stat')


def better(metric):
    if 'merged' in metric or metric.endswith('per_kick'):
        return 'higher'
    if any(word in metric for word in LOWER_IS_BETTER):
        return 'lower'
    return 'higher'


def load(data_dir, kind):
    tsv = os.path.join(data_dir, kind + '.tsv')
    meta_path = os.path.join(data_dir, kind + '.meta')
    if not os.path.exists(tsv):
        return None
    rows = OrderedDict()        # (cell, metric) -> {label: [values]}
    units = {}
    labels = []
    meta = {'cells': [], 'accel': set(), 'cache': {}}
    with open(tsv) as f:
        for line in f:
            label, _rep, cell, metric, value, unit = \
                (line.rstrip('\n').split('\t') + [''])[:6]
            if label not in labels:
                labels.append(label)
            if metric == 'accel':
                meta['accel'].add(value)
                continue
            if metric == 'cache':
                meta['cache'].setdefault(cell, set()).add(value)
                continue
            if not shown(metric):
                continue
            rows.setdefault((cell, metric), {}).setdefault(label, []) \
                .append(float(value))
            units[(cell, metric)] = unit
    with open(meta_path) as f:
        for line in f:
            key, _, value = line.rstrip('\n').partition('\t')
            if key == 'cell':
                meta['cells'].append(value.split('\t', 1))
            else:
                meta[key] = value
    return rows, units, labels, meta


def fmt(x):
    if x == 0:
        return '0'
    if abs(x) >= 100:
        return '{:,.0f}'.format(x)
    if abs(x) >= 10:
        return '{:.1f}'.format(x)
    return '{:.2f}'.format(x)


def summary(values):
    return statistics.median(values), min(values), max(values)


def fallbacks(meta):
    """The cells that ran with the page cache, not cache=none."""
    return sorted(c for c, modes in meta['cache'].items() if modes != {'none'})


def table(rows, units, labels, meta, aa=False):
    a, b = labels
    writeback = fallbacks(meta)
    head = ['cell', 'metric', 'unit', 'better', a + ' median (min-max)',
            b + ' median (min-max)', '{}/{}'.format(b, a)]
    if aa:
        head.append('noise')
    out = ['| ' + ' | '.join(head) + ' |',
           '|' + '---|' * len(head)]
    for (cell, metric), by_label in rows.items():
        if a not in by_label or b not in by_label:
            continue
        ma, la, ha = summary(by_label[a])
        mb, lb, hb = summary(by_label[b])
        ratio = '{:.3f}'.format(mb / ma) if ma else '-'
        name = cell + (' (cache=writeback)' if cell in writeback else '')
        line = [name, metric, units[(cell, metric)], better(metric),
                '{} ({}-{})'.format(fmt(ma), fmt(la), fmt(ha)),
                '{} ({}-{})'.format(fmt(mb), fmt(lb), fmt(hb)), ratio]
        if aa:
            line.append('-' if not ma else
                        'ok' if 0.95 <= mb / ma <= 1.05 else
                        '**outside 0.95..1.05**')
        out.append('| ' + ' | '.join(line) + ' |')
    return '\n'.join(out)


def describe(meta):
    info = dict(meta, accel=', '.join(sorted(meta['accel'])) or 'n/a')
    text = ('- date: {date}\n- machine: {cpu}, {nproc} CPUs, kernel {kernel}\n'
            '- command: `{command}` ({reps} repetitions per cell, '
            'interleaved in ABBA order; {seconds} s in all)\n'
            '- guest acceleration: {accel}\n').format(**info)
    if fallbacks(meta):
        text += ('- **cache=writeback**: /dev/shm refused O_DIRECT, so these '
                 'shm cells measure the page cache, not cache=none: {}\n'
                 .format(', '.join(fallbacks(meta))))
    elif meta['cache']:
        text += '- shm backend: cache=none in every shm cell\n'
    return text


def commands(meta):
    return '\n'.join('- `{}`: `{}`'.format(c, cmd) for c, cmd in meta['cells'])


def plot(rows, units, labels, out_dir):
    """One panel per metric: median bars with min-max error bars."""
    panels = [(k, v) for k, v in rows.items()
              if all(label in v for label in labels)]
    if not panels:
        return
    cols = 6
    nrows = (len(panels) + cols - 1) // cols
    dat = os.path.join(out_dir, 'benchmarks.dat')
    script = ['set terminal pngcairo size {},{} font ",8"'.format(
                  cols * 320, nrows * 220),
              'set output "{}"'.format(os.path.join(out_dir,
                                                     'benchmarks.png')),
              'set multiplot layout {},{}'.format(nrows, cols),
              'set style fill solid 0.5', 'set boxwidth 0.6',
              'set xrange [-0.6:1.6]', 'set yrange [0:*]',
              'set xtics ("{}" 0, "{}" 1)'.format(*labels),
              'unset key']
    with open(dat, 'w') as f:
        for i, ((cell, metric), by_label) in enumerate(panels):
            for x, label in enumerate(labels):
                med, lo, hi = summary(by_label[label])
                f.write('{} {} {} {}\n'.format(x, med, lo, hi))
            f.write('\n\n')
            script.append('set title "{}\\n{} ({})" noenhanced'.format(
                cell, metric, units[(cell, metric)]))
            script.append('plot "{0}" index {1} using 1:2:($1 + 1) with boxes '
                          'lc variable, "" index {1} using 1:2:3:4 with '
                          'yerrorbars pt 0 lc rgb "black"'.format(dat, i))
    script.append('unset multiplot')
    subprocess.run(['gnuplot'], input='\n'.join(script), text=True,
                   check=True)
    os.unlink(dat)


def main():
    data_dir, out_dir = sys.argv[1:3]
    main_run = load(data_dir, 'stock-fork')
    aa_run = load(data_dir, 'aa')
    text = ['# Benchmarks', '',
            'Written by `make bench` (scripts/bench/run.sh and report.py '
            'from the data in docs/bench-data/); do not edit by hand. '
            'Ratios are fork/stock of the medians; "better" says which '
            'direction is an improvement. Instruction counts come from '
            'callgrind: P1\'s are exact (qemu-img bench has no timing in it) '
            'and run once per build; P2\'s depend on timing (how many '
            'requests one pass of the event loop takes, how long the '
            'iothread polls), so they run every repetition and vary; '
            'min-max shows by how much.', '']
    if main_run:
        rows, units, labels, meta = main_run
        text += ['## Stock against fork', '', describe(meta),
                 table(rows, units, labels, meta), '',
                 '![benchmarks](benchmarks.png)', '',
                 '### Commands', '', commands(meta), '']
        plot(rows, units, labels, out_dir)
    if aa_run:
        rows, units, labels, meta = aa_run
        text += ['## A/A: stock against stock', '',
                 'The same stock binary in both columns: the noise of each '
                 'row. A row outside 0.95..1.05 cannot judge a difference '
                 'of that size until it gets more repetitions or a better '
                 'method.', '', describe(meta),
                 table(rows, units, labels, meta, aa=True), '']
    text += ['## Reproduce', '',
             '    make bench          # stock against fork, writes docs/',
             '    make bench AA=1     # stock against stock (noise)',
             '    make bench QUICK=1  # smoke run into build/bench/',
             '    make bench ONLY=RE  # cells matching RE, into build/bench/',
             '']
    with open(os.path.join(out_dir, 'benchmarks.md'), 'w') as f:
        f.write('\n'.join(text))


if __name__ == '__main__':
    main()

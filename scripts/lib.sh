# Shared by the scripts: where the fork's own files live, and how
# patches/series names them.

# Directories of this repository that hold files the fork adds to QEMU,
# at their QEMU paths.
OWN_DIRS=(hw block util include tests)

# The own files listed in a series file, one per line.
series_own_files() {
    grep -v '^#' "$1" | awk '{ for (i = 2; i <= NF; i++) print $i }'
}

# The own files present under directory $1 (this repository's top).
own_files() {
    local d
    for d in "${OWN_DIRS[@]}"; do
        [ -d "$1/$d" ] && (cd "$1" && find "$d" -type f)
    done
    return 0
}

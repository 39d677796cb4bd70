# Fetching Debian source packages through apt without touching the
# system's apt setup, and unpacking one as a git tree. Sourced by
# ./configure, scripts/upstream-check.sh and scripts/port-check.sh.

# The first URI of the system's apt configuration that serves Debian's
# main archive (suite bookworm); new entries reuse it so that no mirror
# host name is ever written in this repository.
debian_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 uri = ""; suites = ""
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^URIs:/) { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
                     if ($i ~ /^Suites:/) { suites = " " $i " " }
                 }
                 if (uri != "" && suites ~ /[ \t]bookworm[ \t]/) { print uri; exit }
             }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f"
    done
}

# apt_source_setup DIR URI SUITE...: a private apt configuration in DIR
# (its own state, cache and one deb-src entry for SUITEs), updated.
apt_source_setup() {
    local dir=$1 uri=$2
    shift 2
    mkdir -p "$dir/etc/sources.list.d" "$dir/etc/preferences.d" \
             "$dir/state/lists/partial" "$dir/cache/archives/partial"
    cat > "$dir/etc/sources.list.d/deb-src.sources" <<EOS
Types: deb-src
URIs: $uri
Suites: $*
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    cat > "$dir/apt.conf" <<EOS
Dir::State "$dir/state";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$dir/cache";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$dir/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$dir/etc/preferences.d";
APT::Sandbox::User "root";
EOS
    APT_CONFIG=$dir/apt.conf apt-get -q update >/dev/null 2>&1
}

# apt_source_versions DIR PACKAGE: the versions DIR's suites carry,
# newest first.
apt_source_versions() {
    APT_CONFIG=$1/apt.conf apt-cache showsrc "$2" 2>/dev/null |
        awk '/^Version:/ { print $2 }' | sort -u |
        sort -r -t: -k1,1 -V   # epoch, then upstream version
}

# apt_source_fetch DIR PACKAGE=VERSION TARBALL DEST: download the source
# package with DIR's configuration and move its TARBALL to DEST.
apt_source_fetch() {
    local dir=$1 pkg=$2 tarball=$3 dest=$4
    rm -rf "$dir/src" && mkdir -p "$dir/src"
    (cd "$dir/src" &&
     APT_CONFIG=$dir/apt.conf apt-get -q source --download-only "$pkg" \
         >/dev/null 2>&1) || return 1
    [ -f "$dir/src/$tarball" ] || return 1
    mv "$dir/src/$tarball" "$dest"
}

# apt_source_git_tree TARBALL DIR WHO MESSAGE: unpack an orig TARBALL into
# DIR (which must not exist) as a git repository of one commit, MESSAGE,
# committed as WHO (user name, WHO@localhost).
apt_source_git_tree() {
    local tarball=$1 dir=$2 who=$3 message=$4
    mkdir -p "$dir"
    tar -xf "$tarball" -C "$dir" --strip-components=1
    git -C "$dir" init -q
    git -C "$dir" config user.name "$who"
    git -C "$dir" config user.email "$who@localhost"
    git -C "$dir" add -A -f
    git -C "$dir" commit -q -m "$message"
}

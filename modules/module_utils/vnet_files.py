"""Files written whole or not at all: what vnetctl writes on a host (boot configuration,
documents a module writes, the host lock's holder files) survives a full disk: every new
content is written and synced to a temporary file beside its target first, then renamed
over it; a failure before the rename leaves the target as it was.

Runs on the managed host: Python 3.9+, standard library only.
"""

import os


def stage(path, text, mode=0o644):
    """`text` written and synced to a temporary file beside `path`, returned for the
    caller to rename over `path` (`commit`). On any failure (a full disk: ENOSPC, short
    writes) the temporary file is removed and the error raised: nothing was changed."""
    data = text.encode() if isinstance(text, str) else text
    temp = "%s.vnetctl-%d.tmp" % (path, os.getpid())
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        discard(temp)
        if exc.filename is None:  # os.write names no file: say which one could not be
            exc.filename = path
        raise
    except BaseException:
        discard(temp)
        raise
    return temp


def commit(temp, path):
    """A staged file renamed over `path`: a reader sees the old content or the new one."""
    try:
        os.rename(temp, path)
    except BaseException:
        discard(temp)
        raise


def write_whole(path, text, mode=0o644):
    """`path` holds `text` afterwards, or (the error raised) what it held before."""
    commit(stage(path, text, mode), path)


def replace_files(writes, links=(), removals=()):
    """A set of files changed whole or not at all: `writes` [(path, content[, mode])] and
    `links` [(path, target)] are staged first (with the directories they need); only
    when every one is, are they renamed into place and `removals` removed (renames and
    removals need no space). A failure while staging undoes what was staged."""
    made, staged = [], []
    try:
        for path, text, *mode in writes:
            made += _makedirs(os.path.dirname(path))
            staged.append((stage(path, text, *mode), path))
        for path, target in links:
            made += _makedirs(os.path.dirname(path))
            temp = "%s.vnetctl-%d.tmp" % (path, os.getpid())
            os.symlink(target, temp)
            staged.append((temp, path))
    except BaseException:
        for temp, _ in staged:
            discard(temp)
        for directory in reversed(made):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        raise
    for temp, path in staged:
        commit(temp, path)
    for path in removals:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _makedirs(directory):
    """The directories made for `directory` (none when it exists), parents first."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.insert(0, directory)
        directory = os.path.dirname(directory)
    for path in missing:
        os.mkdir(path, 0o755)
    return missing


def discard(path):
    try:
        os.unlink(path)
    except OSError:
        pass

#!/usr/bin/env python3
"""Print the ninja targets the tests of some suites need, one per line, as `meson test
--suite S` would build them first (scripts/test.sh builds the sanitizer builds this way
ahead of their tests, in the background).

    suite_targets.py BUILD_DIR SUITE [SUITE...]

A suite is named as in meson.build ('runtime'), or with the project ('ringlet:runtime').
Exits 1 if no test of BUILD_DIR is in any of the suites."""
import json
import os
import subprocess
import sys


def introspect(build_dir, what):
    r = subprocess.run(['meson', 'introspect', build_dir, '--' + what], capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()
        sys.exit(f'suite_targets.py: meson introspect {build_dir} --{what} failed'
                 + (f': {why[-1]}' if why else '') + ' (not a configured meson build directory?)')
    return json.loads(r.stdout)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build_dir = os.path.abspath(sys.argv[1])
    wanted = set(sys.argv[2:])
    files = {t['id']: t['filename'] for t in introspect(build_dir, 'targets')}
    depends = set()
    matched = 0
    for test in introspect(build_dir, 'tests'):
        suites = set(test['suite']) | {s.split(':', 1)[-1] for s in test['suite']}
        if suites & wanted:
            matched += 1
            depends.update(test['depends'])
    if not matched:
        sys.exit(f'suite_targets.py: no test of {build_dir} is in the suites {" ".join(sorted(wanted))}')
    targets = sorted({os.path.relpath(f, build_dir) for d in depends for f in files.get(d, [])})
    print('\n'.join(targets))


if __name__ == '__main__':
    main()

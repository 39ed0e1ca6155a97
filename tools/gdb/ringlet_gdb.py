# ringlet's gdb commands: every fiber of every scheduler, live (gdb -p) or in a core file.
#
#   info fibers [-no-where]     every fiber: id, name, core, state, its wait, how long it has
#                               been parked, and where (its first frame outside ringlet and
#                               the C++ library)
#   fiber S.ID | ID | NAME      select a fiber (S: its scheduler in info fibers; ID alone or
#                               NAME when no other fiber has it): bt, frame, up, info locals
#                               then work on its stack
#   fiber                       which fiber is selected
#   fiber off                   back to the OS threads' own stacks
#   fiber bt ID [ARGS]          one fiber's backtrace
#   fiber apply all|ID... CMD   run CMD with each fiber selected ("fiber apply all bt")
#
# How: the schedulers are in a list (ringlet::detail::Scheduler::g_schedulers, then each
# one's next_scheduler_); each has its live fibers (all_head_, then FiberState::all_next).
# A parked or ready fiber's registers are where the switch (ringlet_jump_fcontext, laid out
# as Boost.Context's jump_fcontext, x86_64 SysV) pushed them on its stack: at ctx, mxcsr and
# the x87 control word (8 bytes), r12, r13, r14, r15, rbx, rbp, then the return address; its stack pointer after the return is ctx + 0x40.
# Selecting such a fiber changes no register (a core file has none to write): an unwinder
# presents the fiber's saved registers as the caller of the innermost frame of one OS thread
# (the fiber's scheduler's), and a frame filter hides that frame (and the calls inlined into
# it) from bt, so the fiber's frames follow. The running fiber of a scheduler is on its OS
# thread's stack: selecting it selects that thread.
#
# Loaded by gdb from libringlet.so's .debug_gdb_scripts section, or from its installed
# libringlet.so.VERSION-gdb.py (see tools/gdb/meson.build), or with "source ringlet_gdb.py".
# Written for gdb 13 (Debian 12); needs libringlet's debug info. docs/DESIGN.md, "Fibers in
# gdb", has the whole account.

import itertools
import os
import struct
import time

import gdb

try:
    from gdb.unwinder import Unwinder, register_unwinder
except ImportError:  # a gdb without Python unwinders
    Unwinder = None

_CTX_REGS = (("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20), ("rbx", 0x28), ("rbp", 0x30))
_CTX_RIP = 0x38
_CTX_SIZE = 0x40
_NEVER = (1 << 63) - 1  # Deadline::never(): steady_clock::time_point::max()
_CLOCK_MONOTONIC_COARSE = 6


class RingletError(Exception):
    """Something to say in one line instead of a traceback."""


class StackMissing(RingletError):
    """A core file without the fiber's stack."""


MISSING_NOTE = (
    "Fibers marked (stack not in the core file): their saved contexts read as zeros. gdb's "
    "generate-core-file stops copying a mapping at its first unreadable page, and ringlet's "
    "stack slabs hold MADV_GUARD_INSTALL guard pages. Make the core with gcore in a gdb that "
    "loaded these commands (it fills in what generate-core-file left out), or use the "
    "kernel's core dump (ulimit -c; SIGABRT, SIGQUIT).")


# --- reading the process -------------------------------------------------------------------

def _need_debug_info():
    try:
        return gdb.lookup_type("ringlet::detail::FiberState")
    except gdb.error:
        pass
    try:
        gdb.parse_and_eval("(char*)&'_ZN7ringlet6detail9Scheduler12g_schedulersE'")
    except gdb.error:
        raise RingletError("no ringlet runtime in this program (no symbol "
                           "ringlet::detail::Scheduler::g_schedulers in any loaded object)")
    raise RingletError("libringlet is here but has no debug info: the fiber commands need a "
                       "build with -g (meson --buildtype=debug or debugoptimized, or "
                       "--buildtype=release -Ddebug=true), or its separate debug file")


def _string(v):
    """A std::string's text, read without a pretty-printer."""
    try:
        n = int(v["_M_string_length"])
        if n == 0:
            return ""
        return v["_M_dataplus"]["_M_p"].string(length=min(n, 200), errors="replace")
    except gdb.error:
        return "?"


def _cstring(v):
    if int(v) == 0:
        return None
    try:
        return v.string(errors="replace")[:120]
    except gdb.error:
        return "?"


class Fiber:
    __slots__ = ("addr", "id", "name", "sched", "status", "running", "what", "fd", "target",
                 "deadline_ns", "parked_since_ns", "ctx", "spawned_from", "stack_lo", "stack_size")

    def spec(self):
        return "%d.%d" % (self.sched.index, self.id)

    def label(self):
        return "fiber %s '%s'" % (self.spec(), self.name)


class Sched:
    __slots__ = ("index", "addr", "core", "tid", "running_addr", "fibers")


def _registry_head():
    """ringlet::detail::Scheduler::g_schedulers, looked up by symbol: an expression would be
    parsed in the selected frame's language (C in libc or liburing frames)."""
    name = "ringlet::detail::Scheduler::g_schedulers"
    for lookup in (gdb.lookup_global_symbol, gdb.lookup_static_symbol):
        try:
            sym = lookup(name)
        except gdb.error:
            sym = None
        if sym is not None:
            return sym.value()
    try:
        return gdb.parse_and_eval("'%s'" % name)
    except gdb.error as e:
        raise RingletError("cannot read %s: %s" % (name, e))


def _field_offset(t, name):
    for fld in t.fields():
        if fld.name == name:
            return fld.bitpos // 8, fld.type
    raise RingletError("ringlet::detail::Fiber has no field '%s': this script does not match "
                       "the library" % name)


def _read_fibers():
    """Every scheduler, each with its live fibers, as the process's memory has them now."""
    state_t = _need_debug_info()
    state_p = state_t.pointer()
    # Fiber's fields at their offsets: dereferencing a Fiber* (polymorphic) would have gdb
    # look for the dynamic type's RTTI (lambdas' FiberImpl<> have none) and warn each time.
    fiber_t = gdb.lookup_type("ringlet::detail::Fiber")
    id_off, id_t = _field_offset(fiber_t, "id")
    name_off, name_t = _field_offset(fiber_t, "name")
    state_off, _ = _field_offset(fiber_t, "state_")

    def at(addr, t):
        return gdb.Value(addr).cast(t.pointer()).dereference()
    head = _registry_head()
    scheds = []
    s = head
    seen = set()
    while int(s) != 0 and int(s) not in seen and len(seen) < 4096:
        seen.add(int(s))
        sc = Sched()
        sc.addr = int(s)
        sc.core = int(s["core_"])
        sc.tid = int(s["tid_"])
        native = int(s["native_"].address)
        run = int(s["running_"])
        sc.running_addr = 0 if run == native else run
        sc.fibers = []
        scheds.append((sc, s["all_head_"]))
        s = s["next_scheduler_"]
    scheds.sort(key=lambda p: (p[0].core, p[0].tid))
    out = []
    for i, (sc, f) in enumerate(scheds):
        sc.index = i
        count = 0
        while int(f) != 0 and count < 10000000:
            count += 1
            fa = int(f)
            st = gdb.Value(fa + state_off).cast(state_p).dereference()
            fi = Fiber()
            fi.addr = fa
            fi.id = int(at(fa + id_off, id_t))
            fi.name = _string(at(fa + name_off, name_t)) or "fiber-%d" % fi.id
            fi.sched = sc
            fi.status = str(st["status"]).rsplit("::", 1)[-1]
            fi.running = fi.addr == sc.running_addr
            # The wait lives in park's frame on the fiber's own stack (a core file made
            # without the stacks cannot show it).
            fi.what, fi.fd, fi.target, fi.deadline_ns, fi.parked_since_ns = None, -1, 0, _NEVER, 0
            wp = st["waiting"]
            if int(wp) != 0:
                try:
                    w = wp.dereference()
                    fi.what = _cstring(w["what"])
                    fi.fd = int(w["fd"])
                    fi.target = int(w["target"])
                    fi.parked_since_ns = int(w["since_ns"])
                    fi.deadline_ns = int(w["deadline"]["at_"]["__d"]["__r"])
                except gdb.error:
                    pass
                if fi.what is None:  # every wait names itself: its stack is not in the core
                    fi.what, fi.fd, fi.target, fi.deadline_ns = "(unknown: stack not in the core file)", -1, 0, _NEVER
            fi.ctx = int(st["ctx"])
            fi.spawned_from = int(st["spawned_from"])
            fi.stack_lo = int(st["stack"]["lo"])
            fi.stack_size = int(st["stack"]["size"])
            sc.fibers.append(fi)
            f = st["all_next"]
        sc.fibers.reverse()  # all_head_ is the newest: list oldest first
        out.append(sc)
    return out


def _all_fibers(scheds):
    return [f for s in scheds for f in s.fibers]


def _find(scheds, spec):
    fibers = _all_fibers(scheds)
    spec = spec.strip()
    try:
        if "." in spec:
            si, fid = (int(x, 0) for x in spec.split(".", 1))
            hits = [f for f in fibers if f.sched.index == si and f.id == fid]
        else:
            fid = int(spec, 0)
            hits = [f for f in fibers if f.id == fid]
    except ValueError:
        hits = [f for f in fibers if f.name == spec]
        if not hits:
            raise RingletError("'%s' is not a fiber id (ID, S.ID or a name)" % spec)
    if not hits:
        raise RingletError("no fiber %s (see info fibers)" % spec)
    if len(hits) > 1:
        raise RingletError("fiber %s is ambiguous: %s" % (spec, ", ".join(f.spec() for f in hits)))
    return hits[0]


def _live():
    """True for a live local process (its CLOCK_MONOTONIC is ours), False for a core file."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if conn is None or inf.pid == 0:
        return False
    return conn.type == "native"


def _now_ns(clock):
    return time.clock_gettime_ns(clock)


def _secs(ns):
    s = ns / 1e9
    if s < 1:
        return "%dms" % (ns // 1000000)
    if s < 600:
        return "%.1fs" % s
    if s < 36000:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%.1fh" % (s / 3600)


# --- presenting a fiber's stack --------------------------------------------------------------

class _Selection:
    # host_sp, host_pc: the registers of the host thread's innermost frame that is not an
    # inlined call (inlined frames share them): the frame whose caller becomes the fiber's.
    __slots__ = ("fiber", "ptid", "regs", "host_sp", "host_pc")


_sel = None


def _thread_for_tid(tid):
    inf = gdb.selected_inferior()
    for t in inf.threads():
        if t.ptid[1] == tid or (t.ptid[1] == 0 and t.ptid[0] == tid):
            return t
    return None


def _saved_regs(f):
    try:
        arch = gdb.selected_inferior().architecture().name()
    except (AttributeError, gdb.error):
        arch = "i386:x86-64"
    if arch != "i386:x86-64":
        raise RingletError("fiber stacks are read for x86_64 only (Boost.Context's SysV "
                           "layout); this is %s" % arch)
    if f.ctx == 0:
        raise RingletError("%s has no saved context" % f.label())
    try:
        raw = bytes(gdb.selected_inferior().read_memory(f.ctx, _CTX_SIZE))
    except gdb.MemoryError:
        raise RingletError("%s: its saved context at 0x%x is not readable%s" % (
            f.label(), f.ctx, "" if _live() else " (not in the core file?)"))
    words = struct.unpack("<8Q", raw)
    if not any(words[1:]):
        raise StackMissing("%s: stack not in the core file" % f.label())
    regs = {name: words[off // 8] for name, off in _CTX_REGS}
    regs["rip"] = words[_CTX_RIP // 8]
    regs["rsp"] = f.ctx + _CTX_SIZE
    return regs


def _clear_selection():
    global _sel
    if _sel is not None:
        _sel = None
        gdb.invalidate_cached_frames()


def _select(f):
    """Make f's frames the selected thread's (see the header). Returns the thread."""
    global _sel
    _clear_selection()
    th = _thread_for_tid(f.sched.tid)
    if f.running:
        if th is None:
            raise RingletError("%s runs on thread LWP %d, which gdb does not show" % (f.label(), f.sched.tid))
        th.switch()
        return th
    if f.status == "New":
        raise RingletError("%s has not started yet: no frames" % f.label())
    regs = _saved_regs(f)
    if th is None:
        th = gdb.selected_thread()
        if th is None:
            raise RingletError("no thread selected")
    th.switch()
    top = gdb.newest_frame()
    sel = _Selection()
    sel.fiber = f
    sel.ptid = th.ptid
    sel.regs = regs
    sel.host_sp = int(top.read_register("rsp"))
    sel.host_pc = int(top.read_register("rip"))
    _sel = sel
    gdb.invalidate_cached_frames()
    return th


def _hosting(sel):
    th = gdb.selected_thread()
    return sel is not None and th is not None and th.ptid == sel.ptid


def _host_frame(frame, sel):
    """frame is the host thread's innermost frame or inlined into it (not the fiber's)."""
    return int(frame.read_register("rsp")) == sel.host_sp


def _first_fiber_frame():
    """While a fiber is selected: its innermost frame (the host's are skipped)."""
    frame = gdb.newest_frame()
    sel = _sel
    if sel is None or not _hosting(sel):
        return frame
    while frame is not None and _host_frame(frame, sel):
        frame = frame.older()
    return frame


class _FrameId:  # gdb 13's unwinders want an object with sp and pc, both gdb.Value
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


if Unwinder is not None:
    class _FiberUnwinder(Unwinder):
        """While a fiber is selected: the caller of the host thread's innermost frame is the
        fiber's switch point, with the registers the switch saved."""

        def __init__(self):
            super().__init__("ringlet-fiber")

        def __call__(self, pending_frame):
            sel = _sel
            if sel is None or not _hosting(sel):
                return None
            # The host's innermost frame that is not an inlined call (those are the inline
            # unwinder's, above every other).
            if int(pending_frame.read_register("rsp")) != sel.host_sp:
                return None
            pc = pending_frame.read_register("rip")
            if int(pc) != sel.host_pc:
                return None
            # The frame's stack address is 0: gdb stops a backtrace whose caller frame looks
            # inner to (below) its callee, and the fiber's stack may be anywhere relative
            # to the thread's.
            sp0 = gdb.Value(0).cast(pending_frame.read_register("rsp").type)
            info = pending_frame.create_unwind_info(_FrameId(sp0, pc))
            for name, val in sel.regs.items():
                reg_t = pending_frame.read_register(name).type
                info.add_saved_register(name, gdb.Value(val).cast(reg_t))
            return info


class _FiberFrames:
    """bt of a selected fiber starts at its own frames: the host thread's innermost frame
    (and the calls inlined into it) are not the fiber's. Any bt ends at make_fcontext's
    trampoline, the bottom of every fiber's stack (what lies beyond is no frame)."""

    def __init__(self):
        self.name = "ringlet-fiber"
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        sel = _sel
        if _hosting(sel):
            frames = itertools.dropwhile(lambda d: _host_frame(d.inferior_frame(), sel), frames)
        return self._until_fiber_bottom(frames)

    @staticmethod
    def _until_fiber_bottom(frames):
        for d in frames:
            yield d
            if d.inferior_frame().name() == "make_fcontext":
                return


# --- where a fiber is ------------------------------------------------------------------------

# Where a fiber is: its first frame in neither ringlet nor the C++ library's templates.
_INTERNAL_PREFIXES = ("ringlet::", "boost::context", "jump_fcontext", "ringlet_jump_fcontext",
                      "make_fcontext", "ontop_fcontext", "std::", "__gnu_cxx::")


def _internal(frame):
    pc = frame.pc()
    so = gdb.solib_name(pc)
    if so and os.path.basename(so).startswith("libringlet"):
        return True
    name = frame.name() or ""
    return name.startswith(_INTERNAL_PREFIXES)


def _describe_frame(frame):
    name = frame.name() or "0x%x" % frame.pc()
    if len(name) > 60:
        name = name[:57] + "..."
    sal = frame.find_sal()
    if sal.symtab is not None and sal.line:
        return "%s (%s:%d)" % (name, os.path.basename(sal.symtab.filename), sal.line)
    so = gdb.solib_name(frame.pc())
    return "%s (%s)" % (name, os.path.basename(so)) if so else name


def _where(f, depth=48):
    """f's first frame outside ringlet (its innermost if all are ringlet's)."""
    try:
        _select(f)
        frame = _first_fiber_frame()
        first = frame
        n = 0
        while frame is not None and n < depth:
            if not _internal(frame):
                return _describe_frame(frame)
            frame = frame.older()
            n += 1
        return _describe_frame(first) if first is not None else "?"
    except StackMissing:
        return "(stack not in the core file)"
    except (RingletError, gdb.error) as e:
        return "(%s)" % str(e).splitlines()[0][:60]


_SWITCH_FUNCTIONS = ("jump_fcontext", "ringlet_jump_fcontext",
                     "ringlet::detail::Scheduler::switch_to", "ringlet::detail::Scheduler::after_switch")


def _mid_switch(th):
    """th was stopped inside a switch: between running_ = next and after_switch, which stores
    the switched-out fiber's new context, that fiber's saved context is its previous one."""
    if th is None:
        return False
    thread0 = gdb.selected_thread()
    try:
        th.switch()
        frame = gdb.newest_frame()
        for _ in range(4):
            if frame is None:
                break
            name = frame.name() or ""
            if name.startswith(_SWITCH_FUNCTIONS):
                return True
            frame = frame.older()
    except gdb.error:
        pass
    finally:
        if thread0 is not None and thread0.is_valid():
            thread0.switch()
    return False


def _restore(thread):
    _clear_selection()
    if thread is not None and thread.is_valid():
        thread.switch()


# --- commands ---------------------------------------------------------------------------------

def _wait_text(f, by_addr):
    if f.running:
        return "-"
    if f.status != "Parked":
        return "-"
    parts = [f.what or "a wait"]
    if f.fd >= 0:
        parts.append("fd %d" % f.fd)
    if f.target:
        t = by_addr.get(f.target)
        parts.append("on %s" % (("%s '%s'" % (t.spec(), t.name)) if t else "0x%x" % f.target))
    return ", ".join(parts)


def _state(f):
    if f.running:
        return "running"
    return {"Ready": "runnable", "New": "new"}.get(f.status, f.status.lower())


class InfoFibers(gdb.Command):
    """Every fiber of every ringlet scheduler: id (S.ID: scheduler S, fiber ID), name, core,
state, what it waits on, how long it has been parked, and where: its first frame outside
ringlet. Usage: info fibers [-no-where]"""

    def __init__(self):
        super().__init__("info fibers", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            self._run(arg)
        except RingletError as e:
            raise gdb.GdbError("ringlet: %s" % e)

    def _run(self, arg):
        want_where = "-no-where" not in arg.split()
        scheds = _read_fibers()
        if not scheds:
            print("No ringlet scheduler (ringlet::run has not started, or has ended).")
            return
        fibers = _all_fibers(scheds)
        by_addr = {f.addr: f for f in fibers}
        live = _live()
        parked = [f.parked_since_ns for f in fibers if f.status == "Parked" and f.parked_since_ns > 0]
        if live:
            now = _now_ns(_CLOCK_MONOTONIC_COARSE)
            print("%d fiber(s) on %d scheduler(s); parked times as of now (live process)." % (
                len(fibers), len(scheds)))
        else:
            now = max(parked) if parked else 0
            print("%d fiber(s) on %d scheduler(s). A core file has no clock: 'parked' is the time "
                  "from the fiber's park to the latest park in the dump, a lower bound (>=)." % (
                      len(fibers), len(scheds)))
        if want_where and len(fibers) > 2000:
            print("(Finding where each fiber is unwinds its stack, about a millisecond a fiber: "
                  "info fibers -no-where lists them at once.)")
        thread0 = gdb.selected_thread()
        missing = False
        try:
            for s in scheds:
                run = by_addr.get(s.running_addr)
                th = _thread_for_tid(s.tid)
                print("scheduler %d: core %d, thread LWP %d%s; %s" % (
                    s.index, s.core, s.tid,
                    " (gdb thread %d)" % th.num if th else " (not among gdb's threads)",
                    ("running " + run.label()) if run else "in its loop (no fiber running)"))
                if _mid_switch(th):
                    print("  (stopped inside a switch: until it ends, this thread's stack may "
                          "be the fiber it leaves, and that fiber's saved context a stale one)")
                print("  %-8s %-20s %-4s %-9s %-34s %-9s %s" % (
                    "ID", "NAME", "CORE", "STATE", "WAITS ON", "PARKED", "WHERE" if want_where else ""))
                for f in s.fibers:
                    if f.status == "Parked" and f.parked_since_ns > 0 and now:
                        age = (">=" if not live else "") + _secs(max(0, now - f.parked_since_ns))
                    else:
                        age = "-"
                    wait = _wait_text(f, by_addr)
                    if f.status == "Parked" and f.deadline_ns != _NEVER:
                        if live:
                            left = f.deadline_ns - _now_ns(time.CLOCK_MONOTONIC)
                            wait += ", %s left" % _secs(max(0, left))
                        else:
                            wait += ", has a deadline"
                    name = f.name if len(f.name) <= 20 else f.name[:17] + "..."
                    where = _where(f) if want_where else ""
                    print("  %-8s %-20s %-4d %-9s %-34s %-9s %s" % (
                        f.spec(), name, s.core, _state(f), wait, age, where))
                    missing = missing or where == "(stack not in the core file)"
        finally:
            _restore(thread0)
        if missing:
            print(MISSING_NOTE)


class FiberCommand(gdb.Command):
    """Select a ringlet fiber: fiber ID (or S.ID, or a name). Then bt, frame N, up, info locals
work on its stack (its frames start after the OS thread's innermost one, which bt hides). "fiber" says which is selected,
"fiber off" goes back to the threads' own stacks. Sub-commands: fiber bt, fiber apply."""

    def __init__(self):
        super().__init__("fiber", gdb.COMMAND_STACK, prefix=True)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        try:
            if not arg:
                if _sel is None:
                    print("No fiber selected (the threads' own stacks are shown).")
                else:
                    print("Selected %s, on gdb thread %d's innermost frame." % (
                        _sel.fiber.label(), gdb.selected_thread().num))
                return
            if arg == "off":
                _clear_selection()
                return
            f = _find(_read_fibers(), arg)
            th = _select(f)
            print("[Selected %s (%s) on thread %d]" % (f.label(), _state(f), th.num))
            frame = _first_fiber_frame()
            if frame is not None:
                frame.select()
            gdb.execute("frame", to_string=False)
        except RingletError as e:
            raise gdb.GdbError("ringlet: %s" % e)


def _header(f):
    sf = ""
    if f.spawned_from:
        try:
            pc = f.spawned_from - 1  # a return address: the call is the byte before
            blk = gdb.block_for_pc(pc)
            fn = None
            while blk is not None and not blk.is_static and not blk.is_global:
                if blk.function is not None:
                    fn = blk.function  # the outermost: the function the call is in
                blk = blk.superblock
            where = fn.print_name if fn else "0x%x" % f.spawned_from
            sal = gdb.find_pc_line(pc)
            if fn is not None and sal.symtab is not None and fn.symtab is not None \
                    and sal.symtab.filename == fn.symtab.filename:
                where += " (%s:%d)" % (os.path.basename(sal.symtab.filename), sal.line)
            elif fn is not None and fn.symtab is not None:
                # the call's line is in an inlined callee (spawn's template): the file only
                where += " (in %s)" % os.path.basename(fn.symtab.filename)
            sf = ", spawned from %s" % where
        except (gdb.error, RuntimeError):
            sf = ", spawned from 0x%x" % f.spawned_from
    return "%s, core %d, %s%s" % (f.label(), f.sched.core, _state(f), sf)


def _apply(fibers, cmd):
    thread0 = gdb.selected_thread()
    try:
        for f in fibers:
            print("\n%s:" % _header(f))
            if f.status == "New":
                print("  (not started yet: no frames)")
                continue
            try:
                _select(f)
                gdb.execute(cmd, to_string=False)
            except StackMissing as e:
                print("  (%s)\n  %s" % (e, MISSING_NOTE))
            except (RingletError, gdb.error) as e:
                print("  (%s)" % e)
    finally:
        _restore(thread0)


class FiberApply(gdb.Command):
    """Run a command with each fiber selected: fiber apply all|ID... COMMAND
(e.g. fiber apply all bt). The process does not run; the selection is restored after."""

    def __init__(self):
        super().__init__("fiber apply", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split()
        try:
            if len(parts) < 2:
                raise RingletError("usage: fiber apply all|ID... COMMAND")
            scheds = _read_fibers()
            if parts[0] == "all":
                fibers, cmd = _all_fibers(scheds), " ".join(parts[1:])
            else:
                specs = []
                while parts and (parts[0][0].isdigit()):
                    specs.append(parts.pop(0))
                if not specs or not parts:
                    raise RingletError("usage: fiber apply all|ID... COMMAND")
                fibers, cmd = [_find(scheds, s) for s in specs], " ".join(parts)
            _apply(fibers, cmd)
        except RingletError as e:
            raise gdb.GdbError("ringlet: %s" % e)


class FiberBt(gdb.Command):
    """A fiber's backtrace, from its saved context: fiber bt ID [bt options, e.g. full]"""

    def __init__(self):
        super().__init__("fiber bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split()
        try:
            if not parts:
                raise RingletError("usage: fiber bt ID [full|N...]")
            f = _find(_read_fibers(), parts[0])
            _apply([f], " ".join(["bt"] + parts[1:]))
        except RingletError as e:
            raise gdb.GdbError("ringlet: %s" % e)


# --- gcore that keeps the fiber stacks ------------------------------------------------------
#
# gdb's generate-core-file copies each mapping in 1 MiB reads and stops at the first read
# that fails, leaving the rest of the mapping as zeros in the file. A MADV_GUARD_INSTALL
# guard page is such a failure, and ringlet's stack slabs hold one below every stack, so
# the stacks (and whatever shares their mapping) were lost. gcore here runs
# generate-core-file, then rewrites, in place, every readable page of a mapping after its
# first unreadable one (the process is stopped: it is the memory gdb just read). Only
# memory reads; the file's layout does not change.

_PT_LOAD = 1
_COPY = 1 << 20
_PAGE = 4096


def _read(inf, addr, n):
    try:
        return bytes(inf.read_memory(addr, n))
    except gdb.MemoryError:
        return None


def fill_core(path, inf):
    """Fill in core file `path` what generate-core-file could not copy. Returns (mappings
    mended, bytes written, pages unreadable)."""
    mended = written = holes = 0
    with open(path, "r+b") as f:
        eh = f.read(64)
        if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
            raise RingletError("%s is not a 64-bit little-endian ELF file" % path)
        phoff = struct.unpack_from("<Q", eh, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", eh, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):
            p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
            if p_type != _PT_LOAD or filesz == 0:
                continue
            failed = False
            wrote = 0
            done = 0
            while done < filesz:
                n = min(_COPY, filesz - done)
                data = _read(inf, vaddr + done, n)
                if data is None:
                    failed = True
                    for page in range(0, n, _PAGE):
                        m = min(_PAGE, n - page)
                        piece = _read(inf, vaddr + done + page, m)
                        if piece is None:
                            holes += 1
                            continue
                        f.seek(offset + done + page)
                        f.write(piece)
                        wrote += m
                elif failed:
                    f.seek(offset + done)
                    f.write(data)
                    wrote += n
                done += n
            mended += wrote > 0
            written += wrote
    return mended, written, holes


class Gcore(gdb.Command):
    """Save a core file of the process, fiber stacks included: gcore [FILE] (default core.PID).

generate-core-file, then what it could not copy filled in (it stops copying a mapping at
its first unreadable page, and ringlet's stack slabs hold guard pages)."""

    def __init__(self):
        super().__init__("gcore", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        inf = gdb.selected_inferior()
        if inf.pid == 0:
            raise gdb.GdbError("The program is not being run.")
        path = arg.strip() or "core.%d" % inf.pid
        gdb.execute("generate-core-file " + path, from_tty)
        try:
            mended, written, holes = fill_core(path, inf)
        except (OSError, RingletError, struct.error) as e:
            raise gdb.GdbError("ringlet: could not fill in %s: %s" % (path, e))
        if mended:
            print("ringlet: filled in %d bytes of %d mapping(s) generate-core-file left out "
                  "(%d unreadable page(s) stay empty)" % (written, mended, holes))


def _on_resume(_event):
    _clear_selection()


def _install():
    if getattr(gdb, "_ringlet_fiber_commands", False):
        return  # loaded once per gdb, whichever object carried it
    gdb._ringlet_fiber_commands = True
    if Unwinder is None:
        print("ringlet: this gdb has no Python unwinders: fiber commands not loaded")
        return
    register_unwinder(None, _FiberUnwinder(), replace=True)
    gdb.frame_filters["ringlet-fiber"] = _FiberFrames()
    InfoFibers()
    FiberCommand()
    FiberBt()
    FiberApply()
    Gcore()
    gdb.events.cont.connect(_on_resume)
    gdb.events.exited.connect(_on_resume)


_install()

#!/usr/bin/env python3
"""Drive libtspread-core.so.3 from Python through ctypes, against a running
daemon, and print a summary. Exit status 0 only if every check held.

Environment:
  RSPREAD_CTYPES_LIB  path of the shared library (libtspread-core.so.3)
  SPREAD_PORT         the daemon's client port (TCP on 127.0.0.1)
"""
import ctypes as C
import os
import select
import sys

MAX_GROUP_NAME = 32
AGREED_MESS = 0x10
REG_MEMB_MESS = 0x1000
CAUSED_BY_JOIN = 0x100


class GroupId(C.Structure):
    _fields_ = [("id", C.c_int32 * 3)]


class VsSetInfo(C.Structure):
    _fields_ = [("num_members", C.c_uint), ("members_offset", C.c_uint)]


class MembershipInfo(C.Structure):
    _fields_ = [
        ("gid", GroupId),
        ("changed_member", C.c_char * MAX_GROUP_NAME),
        ("num_vs_sets", C.c_uint),
        ("my_vs_set", VsSetInfo),
    ]


Name = C.c_char * MAX_GROUP_NAME


def load(path):
    lib = C.CDLL(path)
    lib.SP_version.argtypes = [C.POINTER(C.c_int)] * 3
    lib.SP_version.restype = C.c_int
    lib.SP_connect.argtypes = [C.c_char_p, C.c_char_p, C.c_int, C.c_int, C.POINTER(C.c_int), C.c_char_p]
    lib.SP_connect.restype = C.c_int
    lib.SP_join.argtypes = [C.c_int, C.c_char_p]
    lib.SP_join.restype = C.c_int
    lib.SP_multicast.argtypes = [C.c_int, C.c_int, C.c_char_p, C.c_int16, C.c_int, C.c_char_p]
    lib.SP_multicast.restype = C.c_int
    lib.SP_receive.argtypes = [
        C.c_int, C.POINTER(C.c_int), C.c_char_p, C.c_int, C.POINTER(C.c_int),
        C.POINTER(Name), C.POINTER(C.c_int16), C.POINTER(C.c_int), C.c_int, C.c_char_p,
    ]
    lib.SP_receive.restype = C.c_int
    lib.SP_get_memb_info.argtypes = [C.c_char_p, C.c_int, C.POINTER(MembershipInfo)]
    lib.SP_get_memb_info.restype = C.c_int
    lib.SP_get_vs_sets_info.argtypes = [C.c_char_p, C.POINTER(VsSetInfo), C.c_int, C.POINTER(C.c_uint)]
    lib.SP_get_vs_sets_info.restype = C.c_int
    lib.SP_get_vs_set_members.argtypes = [C.c_char_p, C.POINTER(VsSetInfo), C.POINTER(Name), C.c_int]
    lib.SP_get_vs_set_members.restype = C.c_int
    lib.SP_disconnect.argtypes = [C.c_int]
    lib.SP_disconnect.restype = C.c_int
    lib.SP_strerror.argtypes = [C.c_int]
    lib.SP_strerror.restype = C.c_char_p
    return lib


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def receive(lib, mbox, timeout=10.0):
    r, _, _ = select.select([mbox], [], [], timeout)
    if not r:
        raise TimeoutError("nothing to receive within %.0f s" % timeout)
    st = C.c_int(0)
    sender = C.create_string_buffer(MAX_GROUP_NAME)
    ng = C.c_int(0)
    groups = (Name * 10)()
    mt = C.c_int16(0)
    em = C.c_int(0)
    buf = C.create_string_buffer(4096)
    ret = lib.SP_receive(mbox, C.byref(st), sender, 10, C.byref(ng), groups, C.byref(mt), C.byref(em), 4096, buf)
    names = [groups[i].value.decode() for i in range(max(0, min(ng.value, 10)))]
    return ret, st.value, sender.value.decode(), names, mt.value, em.value, buf


def main():
    lib = load(os.environ["RSPREAD_CTYPES_LIB"])
    port = int(os.environ["SPREAD_PORT"])
    spread_name = ("%d@127.0.0.1" % port).encode()

    ma, mi, pa = C.c_int(), C.c_int(), C.c_int()
    check(lib.SP_version(C.byref(ma), C.byref(mi), C.byref(pa)) == 1, "SP_version")
    print("version %d.%d.%d" % (ma.value, mi.value, pa.value))

    mboxes = {}
    for name in ("pyalice", "pybob"):
        mbox = C.c_int(-1)
        pg = C.create_string_buffer(MAX_GROUP_NAME)
        ret = lib.SP_connect(spread_name, name.encode(), 0, 1, C.byref(mbox), pg)
        check(ret == 1, "SP_connect %s returned %d (%s)" % (name, ret, lib.SP_strerror(ret).decode()))
        check(pg.value.decode() == "#%s#d1" % name, "private group of %s: %r" % (name, pg.value))
        print("connected %s as %s" % (name, pg.value.decode()))
        mboxes[name] = mbox.value
    a, b = mboxes["pyalice"], mboxes["pybob"]

    check(lib.SP_join(a, b"pygroup") == 0, "alice join")
    ret, st, sender, names, mt, em, buf = receive(lib, a)
    check(st == REG_MEMB_MESS | CAUSED_BY_JOIN and names == ["#pyalice#d1"], "alice's own join: %#x %r" % (st, names))
    check(lib.SP_join(b, b"pygroup") == 0, "bob join")

    for who, mbox, idx in (("pyalice", a, 0), ("pybob", b, 1)):
        ret, st, sender, names, mt, em, buf = receive(lib, mbox)
        check(ret == 56, "%s membership body length %d" % (who, ret))
        check(st == REG_MEMB_MESS | CAUSED_BY_JOIN, "%s service %#x" % (who, st))
        check(sender == "pygroup", "%s sender %r" % (who, sender))
        check(names == ["#pyalice#d1", "#pybob#d1"], "%s members %r" % (who, names))
        check(mt == idx, "%s own index %d" % (who, mt))
        info = MembershipInfo()
        check(lib.SP_get_memb_info(buf, st, C.byref(info)) == 1, "SP_get_memb_info")
        gid = list(info.gid.id)
        check(gid[2] == 2, "gid index %r" % gid)
        check(info.changed_member == b"#pybob#d1", "changed member %r" % info.changed_member)
        check(info.num_vs_sets == 1, "num_vs_sets %d" % info.num_vs_sets)
        sets = (VsSetInfo * 4)()
        my = C.c_uint(99)
        n = lib.SP_get_vs_sets_info(buf, sets, 4, C.byref(my))
        check(n == 1 and my.value == 0, "vs sets %d, mine %d" % (n, my.value))
        members = (Name * 4)()
        k = lib.SP_get_vs_set_members(buf, C.byref(sets[0]), members, 4)
        vs = [members[i].value.decode() for i in range(max(k, 0))]
        check(vs == ["#pybob#d1"], "vs-set members %r" % vs)
        print("membership %s: gid index %d, members %s, vs-set %s, my index %d" % (who, gid[2], ",".join(names), ",".join(vs), mt))

    body = b"hello from python"
    check(lib.SP_multicast(a, AGREED_MESS, b"pygroup", 42, len(body), body) == len(body), "multicast")
    for who, mbox in (("pyalice", a), ("pybob", b)):
        ret, st, sender, names, mt, em, buf = receive(lib, mbox)
        got = buf.raw[:max(ret, 0)]
        check(ret == len(body) and got == body, "%s body %r" % (who, got))
        check(st == AGREED_MESS and sender == "#pyalice#d1" and names == ["pygroup"] and mt == 42 and em == 0,
              "%s header fields %#x %r %r %d %d" % (who, st, sender, names, mt, em))
        print("message %s: %r from %s type %d" % (who, got.decode(), sender, mt))

    for mbox in (a, b):
        check(lib.SP_disconnect(mbox) == 0, "disconnect")
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("ctypes summary: OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # report, never hang
        print("ERROR:", repr(e))
        sys.exit(2)

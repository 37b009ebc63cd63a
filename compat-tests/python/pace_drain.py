#!/usr/bin/env python3
"""A Python member draining its queue in a thread while a non-member floods
the group (issue 11 item 6): through ctypes on libtspread-core.so.3.

Usage: pace_drain.py LIB SPREAD_NAME COUNT
  LIB          path of libtspread-core.so.3
  SPREAD_NAME  "4803" (Unix socket) or "4803@127.0.0.1" (TCP)
  COUNT        messages of 1000 bytes to send

Prints "received N of COUNT" and exits 0 only if all arrived, in order.
"""
import ctypes as C
import os
import sys
import threading

MAX_GROUP_NAME = 32
RELIABLE_MESS = 0x02
REGULAR_MESS = 0x3F
REG_MEMB_MESS = 0x1000
Name = C.c_char * MAX_GROUP_NAME


def load(path):
    lib = C.CDLL(path)
    lib.SP_connect.argtypes = [C.c_char_p, C.c_char_p, C.c_int, C.c_int, C.POINTER(C.c_int), C.c_char_p]
    lib.SP_join.argtypes = [C.c_int, C.c_char_p]
    lib.SP_multicast.argtypes = [C.c_int, C.c_int, C.c_char_p, C.c_int16, C.c_int, C.c_char_p]
    lib.SP_receive.argtypes = [
        C.c_int, C.POINTER(C.c_int), C.c_char_p, C.c_int, C.POINTER(C.c_int),
        C.POINTER(Name), C.POINTER(C.c_int16), C.POINTER(C.c_int), C.c_int, C.c_char_p,
    ]
    lib.SP_disconnect.argtypes = [C.c_int]
    return lib


def connect(lib, spread, user, memb):
    mbox = C.c_int(-1)
    pg = C.create_string_buffer(MAX_GROUP_NAME)
    r = lib.SP_connect(spread.encode(), user.encode(), 0, memb, C.byref(mbox), pg)
    if r <= 0:
        sys.exit("SP_connect %s: %d" % (user, r))
    return mbox.value


class Receiver:
    def __init__(self, lib, mbox):
        self.lib, self.mbox = lib, mbox
        self.st, self.ng, self.mt, self.em = C.c_int(0), C.c_int(0), C.c_int16(0), C.c_int(0)
        self.sender = C.create_string_buffer(MAX_GROUP_NAME)
        self.groups = (Name * 16)()
        self.buf = C.create_string_buffer(2000)

    def receive(self):
        self.st.value = 0
        r = self.lib.SP_receive(self.mbox, C.byref(self.st), self.sender, 16, C.byref(self.ng),
                                self.groups, C.byref(self.mt), C.byref(self.em), len(self.buf), self.buf)
        return r, self.st.value


def main():
    lib_path, spread, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lib = load(lib_path)
    member = connect(lib, spread, "m%d" % os.getpid(), 1)
    rcv = Receiver(lib, member)
    if lib.SP_join(member, b"pacegroup") != 0:
        sys.exit("SP_join failed")
    r, st = rcv.receive()
    if r < 0 or not st & REG_MEMB_MESS:
        sys.exit("expected the join's membership, got %d / 0x%x" % (r, st))
    result = {"got": 0, "error": None}

    def drain():
        while result["got"] < count:
            r, st = rcv.receive()
            if r < 0:
                result["error"] = r
                return
            if st & REGULAR_MESS:
                n = int.from_bytes(rcv.buf.raw[:4], "little")
                if n != result["got"]:
                    result["error"] = "message %d where %d was due" % (n, result["got"])
                    return
                result["got"] += 1

    t = threading.Thread(target=drain)
    t.start()
    sender = connect(lib, spread, "s%d" % os.getpid(), 0)
    body = bytearray(1000)
    for i in range(count):
        body[:4] = i.to_bytes(4, "little")
        r = lib.SP_multicast(sender, RELIABLE_MESS, b"pacegroup", 0, len(body), bytes(body))
        if r != len(body):
            print("SP_multicast returned %d" % r)
            break
    t.join(120)
    print("received %d of %d" % (result["got"], count))
    if result["error"] is not None:
        print("error:", result["error"])
    lib.SP_disconnect(sender)
    lib.SP_disconnect(member)
    sys.exit(0 if result["got"] == count and result["error"] is None else 1)


if __name__ == "__main__":
    main()

// Manual interop check of the ORIGINAL pure-Java Spread client (spread.* from
// the 5.0.1 distribution, built by hand; never fetched or built by this repo)
// against a daemon on 127.0.0.1. See docs/interop.md for how it is run.
// Usage: java -cp <spread-java-classes>:. InteropCheck <port>
import spread.*;
import java.net.InetAddress;

// Non-interactive check of the pure-Java Spread client against a daemon:
// two sessions (a, b), join, membership, SAFE/AGREED/FIFO/unicast messages,
// a big message, leave, disconnect. Prints one line per event.
public class InteropCheck {
    static String desc(SpreadMessage m) throws Exception {
        if (m.isMembership()) {
            MembershipInfo i = m.getMembershipInfo();
            StringBuilder sb = new StringBuilder();
            if (i.isRegularMembership()) {
                sb.append("REG_MEMB group=").append(i.getGroup()).append(" members=[");
                SpreadGroup[] mem = i.getMembers();
                for (int k = 0; k < mem.length; k++) sb.append(k == 0 ? "" : ",").append(mem[k]);
                sb.append("]");
                if (i.isCausedByJoin()) sb.append(" join=").append(i.getJoined());
                if (i.isCausedByLeave()) sb.append(" leave=").append(i.getLeft());
                if (i.isCausedByDisconnect()) sb.append(" disconnect=").append(i.getDisconnected());
                if (i.isCausedByNetwork()) sb.append(" network");
                MembershipInfo.VirtualSynchronySet[] vs = i.getVirtualSynchronySets(); sb.append(" vssets=").append(vs == null ? "null" : String.valueOf(vs.length)); sb.append(" gid=").append(i.getGroupID());
            } else if (i.isTransition()) {
                sb.append("TRANSITION group=").append(i.getGroup());
            } else if (i.isSelfLeave()) {
                sb.append("SELF_LEAVE group=").append(i.getGroup());
            } else sb.append("MEMB? type=0x" + Integer.toHexString(m.getServiceType()));
            return sb.toString();
        }
        String kind = m.isReject() ? "REJECT" : "DATA";
        String svc = m.isSafe() ? "SAFE" : m.isAgreed() ? "AGREED" : m.isFifo() ? "FIFO" : m.isCausal() ? "CAUSAL" : m.isReliable() ? "RELIABLE" : m.isUnreliable() ? "UNRELIABLE" : "?";
        byte[] d = m.getData();
        String body = d.length <= 64 ? new String(d, "US-ASCII") : ("<" + d.length + " bytes, last=" + d[d.length - 1] + ">");
        return kind + " " + svc + " from=" + m.getSender() + " groups=" + m.getGroups().length + " type=" + m.getType()
            + " endian_mismatch=" + m.getEndianMismatch() + " len=" + d.length + " body=" + body;
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        InetAddress lo = InetAddress.getByName("127.0.0.1");
        SpreadConnection a = new SpreadConnection();
        a.connect(lo, port, "ja", false, true);
        System.out.println("a connected as " + a.getPrivateGroup());
        SpreadConnection b = new SpreadConnection();
        b.connect(lo, port, "jb", false, true);
        System.out.println("b connected as " + b.getPrivateGroup());

        SpreadGroup ga = new SpreadGroup();
        ga.join(a, "jgrp");
        System.out.println("a: " + desc(a.receive()));
        SpreadGroup gb = new SpreadGroup();
        gb.join(b, "jgrp");
        System.out.println("a: " + desc(a.receive()));
        System.out.println("b: " + desc(b.receive()));

        SpreadMessage m = new SpreadMessage();
        m.addGroup("jgrp"); m.setSafe(); m.setType((short) 4660); m.setData("hello from java".getBytes("US-ASCII"));
        a.multicast(m);
        System.out.println("a: " + desc(a.receive()));
        System.out.println("b: " + desc(b.receive()));

        m = new SpreadMessage();
        m.addGroup(a.getPrivateGroup()); m.setAgreed(); m.setType((short) -2); m.setData("unicast".getBytes("US-ASCII"));
        b.multicast(m);
        System.out.println("a: " + desc(a.receive()));

        m = new SpreadMessage();
        m.addGroup("jgrp"); m.setFifo(); m.setSelfDiscard(true);
        byte[] big = new byte[100000];
        for (int k = 0; k < big.length; k++) big[k] = (byte) (k % 251);
        m.setData(big);
        a.multicast(m);
        SpreadMessage r = b.receive();
        System.out.println("b: " + desc(r));
        System.out.println("b: big body intact = " + java.util.Arrays.equals(r.getData(), big));

        gb.leave();
        System.out.println("b: " + desc(b.receive()));
        System.out.println("a: " + desc(a.receive()));
        b.disconnect();
        System.out.println("b disconnected");
        gb = new SpreadGroup();
        SpreadConnection c = new SpreadConnection();
        c.connect(lo, port, "jc", false, true);
        gb.join(c, "jgrp");
        System.out.println("a: " + desc(a.receive()));
        System.out.println("c: " + desc(c.receive()));
        c.disconnect();
        System.out.println("a: " + desc(a.receive()));
        a.disconnect();
        System.out.println("done");
    }
}

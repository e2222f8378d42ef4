//! Several hosts on this machine: Linux network namespaces (Debian's iproute2, root
//! only), one per host, joined by a bridge in a namespace of their own. Addresses
//! exist only inside the namespaces made here (10.{a}.{b}.0/24, unique per test
//! process); a host's link can be cut and mended. Everything is removed on drop, also
//! when the test fails.

use std::process::Command;

/// The hosts of one test.
pub struct Net {
    prefix: String,
    hosts: Vec<String>,
    net: (u8, u8),
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// Makes a namespace per host in `hosts` (host i gets address .{i+1}).
    pub fn new(hosts: &[&str]) -> Net {
        assert!(
            std::fs::metadata("/proc/self")
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
                .unwrap_or(false),
            "network namespaces need root (the project's CI and test machines run the tests as root)"
        );
        let pid = std::process::id();
        let net = Net {
            prefix: format!("vs{pid}"),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            net: (200 + (pid % 50) as u8, ((pid / 50) % 250) as u8),
        };
        let bridge = net.bridge_ns();
        ip(&["netns", "add", &bridge]);
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        for (i, host) in hosts.iter().enumerate() {
            let ns = net.ns(host);
            let port = format!("p{i}");
            ip(&["netns", "add", &ns]);
            ip(&[
                "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.addr(host)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// The address of `host`.
    pub fn addr(&self, host: &str) -> String {
        let i = self.hosts.iter().position(|h| h == host).expect("a host of this net") + 1;
        format!("10.{}.{}.{i}", self.net.0, self.net.1)
    }

    /// The hosts' network, for a server's access list.
    pub fn cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.net.0, self.net.1)
    }

    /// `program` to be run on `host`.
    pub fn command(&self, host: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).arg(program);
        c
    }

    /// Cuts `host` off the network (its link down) / mends it.
    pub fn cut(&self, host: &str) {
        ip(&["-n", &self.ns(host), "link", "set", "eth0", "down"]);
    }

    pub fn mend(&self, host: &str) {
        ip(&["-n", &self.ns(host), "link", "set", "eth0", "up"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(h)]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.bridge_ns()]).output();
    }
}

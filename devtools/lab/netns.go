package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Network is where a topology's hosts live: each host a Linux network
// namespace of its own, joined to a bridge in the lab's (root) namespace
// by a veth pair. The bridge holds Gateway, so the root namespace reaches
// every host's address and every host reaches the root namespace (the
// load balancers, the simulators) at Gateway. A host whose link is set
// down (Cut) is off the network as a host whose cable was pulled: its
// processes run on, nobody reaches them, they reach nobody.
//
// Making namespaces takes root (CAP_NET_ADMIN and CAP_SYS_ADMIN); the
// `ip` command of iproute2 does the work.
type Network struct {
	Bridge string `json:"bridge"` // e.g. ofn-br0
	// Subnet holds every address, Gateway included (10.201.0.0/16).
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"` // the bridge's address, e.g. 10.201.0.1
	// Prefix begins the names of the topology's namespaces (ofn-).
	Prefix string `json:"prefix"`
}

// ParseNetwork reads LAB_NETWORK, PREFIX:SUBNET (ofc:10.202.0.0/16): the
// bridge PREFIX-br0 at the subnet's first address, hosts PREFIX-<node>. Two
// such stacks, on networks of their own, run side by side.
func ParseNetwork(s string) (Network, error) {
	prefix, subnet, ok := strings.Cut(s, ":")
	ip, ipn, err := net.ParseCIDR(subnet)
	if !ok || prefix == "" || err != nil || ip.To4() == nil {
		return Network{}, fmt.Errorf("LAB_NETWORK=%q: want PREFIX:SUBNET, e.g. ofc:10.202.0.0/16", s)
	}
	gw := ipn.IP.To4()
	gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1)
	return Network{Bridge: prefix + "-br0", Subnet: subnet, Gateway: gw.String(), Prefix: prefix + "-"}, nil
}

// Host is where a node runs: its address and, for a host of its own,
// its network namespace.
type Host struct {
	Addr  string
	Netns string
}

// DefaultNetwork is the ha profile's network.
var DefaultNetwork = Network{Bridge: "ofn-br0", Subnet: "10.201.0.0/16", Gateway: "10.201.0.1", Prefix: "ofn-"}

// maxIfName is Linux's limit on an interface name (IFNAMSIZ-1).
const maxIfName = 15

// Link is the name of a host's veth end in the root namespace: the
// namespace's name with its leading "ofn" made "ofv" (ofn-pg1: ofv-pg1),
// else with a "v" after its first "-" (ofc-pg1: ofc-vpg1), or with "v-" in
// front.
func Link(netns string) string {
	if rest, ok := strings.CutPrefix(netns, "ofn"); ok {
		return "ofv" + rest
	}
	if i := strings.Index(netns, "-"); i >= 0 {
		return netns[:i+1] + "v" + netns[i+1:]
	}
	return "v-" + netns
}

func (n Network) prefixLen() (int, error) {
	_, ipn, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return 0, fmt.Errorf("network %s: %w", n.Subnet, err)
	}
	ones, _ := ipn.Mask.Size()
	return ones, nil
}

// Contains reports whether addr is in the network's subnet.
func (n Network) Contains(addr string) bool {
	_, ipn, err := net.ParseCIDR(n.Subnet)
	ip := net.ParseIP(addr)
	return err == nil && ip != nil && ipn.Contains(ip)
}

// ip runs the ip command.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// NetnsPath is where `ip netns add` pins a namespace.
func NetnsPath(netns string) string { return filepath.Join("/run/netns", netns) }

func netnsExists(netns string) bool { _, err := os.Stat(NetnsPath(netns)); return err == nil }

// Create makes the bridge with the gateway address, unless it is there.
func (n Network) Create(ctx context.Context) error {
	bits, err := n.prefixLen()
	if err != nil {
		return err
	}
	if !n.Contains(n.Gateway) {
		return fmt.Errorf("network: gateway %s is not in %s", n.Gateway, n.Subnet)
	}
	if !linkExists(n.Bridge) {
		if err := ip(ctx, "link", "add", n.Bridge, "type", "bridge"); err != nil {
			return err
		}
		if err := ip(ctx, "addr", "add", n.Gateway+"/"+strconv.Itoa(bits), "dev", n.Bridge); err != nil {
			return err
		}
	}
	return ip(ctx, "link", "set", n.Bridge, "up")
}

// AddHost makes the namespace netns with addr on its eth0, loopback up, a
// default route through the gateway, and the veth's other end in the
// bridge, up. A host already there is left as it is (its link too: a host
// that was cut stays cut until Heal).
func (n Network) AddHost(ctx context.Context, netns, addr string) error {
	if !n.Contains(addr) || addr == n.Gateway {
		return fmt.Errorf("network: host %s: address %s is not a host address of %s", netns, addr, n.Subnet)
	}
	link := Link(netns)
	if len(link) > maxIfName {
		return fmt.Errorf("network: host %s: its link name %s is longer than %d", netns, link, maxIfName)
	}
	if netnsExists(netns) && linkExists(link) {
		return nil
	}
	n.RemoveHost(ctx, netns) // half made: start again
	bits, err := n.prefixLen()
	if err != nil {
		return err
	}
	steps := [][]string{
		{"netns", "add", netns},
		{"link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns},
		{"link", "set", link, "master", n.Bridge},
		{"link", "set", link, "up"},
		{"-n", netns, "addr", "add", addr + "/" + strconv.Itoa(bits), "dev", "eth0"},
		{"-n", netns, "link", "set", "lo", "up"},
		{"-n", netns, "link", "set", "eth0", "up"},
		{"-n", netns, "route", "add", "default", "via", n.Gateway},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return fmt.Errorf("network: host %s: %w", netns, err)
		}
	}
	return nil
}

// RemoveHost deletes the namespace and its link; what is not there is
// skipped.
func (n Network) RemoveHost(ctx context.Context, netns string) error {
	var errs []error
	if linkExists(Link(netns)) {
		errs = append(errs, ip(ctx, "link", "del", Link(netns)))
	}
	if netnsExists(netns) {
		errs = append(errs, ip(ctx, "netns", "del", netns))
	}
	return errors.Join(errs...)
}

// Remove deletes the bridge (its hosts first: RemoveHost).
func (n Network) Remove(ctx context.Context) error {
	if !linkExists(n.Bridge) {
		return nil
	}
	return ip(ctx, "link", "del", n.Bridge)
}

// SetLink sets a host's link (its veth end in the root namespace) up or
// down: down cuts the host off, up heals it.
func (n Network) SetLink(ctx context.Context, netns string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if !linkExists(Link(netns)) {
		return fmt.Errorf("network: host %s has no link %s", netns, Link(netns))
	}
	return ip(ctx, "link", "set", Link(netns), state)
}

// LinkUp reports whether a host's link is up.
func LinkUp(netns string) (bool, error) {
	i, err := net.InterfaceByName(Link(netns))
	if err != nil {
		return false, err
	}
	return i.Flags&net.FlagUp != 0, nil
}

// inNetns is argv run inside the namespace netns, as cred when it is set:
// nsenter enters the namespace and execs setpriv, which takes the user,
// its group and groups and execs argv; both exec, so the process the lab
// starts is argv's own (its pid, its process group).
func inNetns(netns string, cred *syscall.Credential, argv []string) []string {
	out := []string{"nsenter", "--net=" + NetnsPath(netns), "--"}
	if cred != nil {
		out = append(out, "setpriv", "--reuid="+strconv.Itoa(int(cred.Uid)), "--regid="+strconv.Itoa(int(cred.Gid)))
		if len(cred.Groups) == 0 {
			out = append(out, "--clear-groups")
		} else {
			var gs []string
			for _, g := range cred.Groups {
				gs = append(gs, strconv.Itoa(int(g)))
			}
			out = append(out, "--groups="+strings.Join(gs, ","))
		}
		out = append(out, "--")
	}
	return append(out, argv...)
}

// killHost sends SIGKILL to every process in the namespace netns and
// waits until they are gone: the host's loss, with the processes a node
// left in sessions of their own (Patroni's PostgreSQL).
func killHost(netns string) error {
	if !netnsExists(netns) {
		return nil
	}
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	if err != nil {
		return fmt.Errorf("ip netns pids %s: %w", netns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, pid := range pids {
		if !waitGone(pid, 5*time.Second) {
			return fmt.Errorf("host %s: process %d outlived SIGKILL", netns, pid)
		}
	}
	return nil
}

// hosts is every namespace the stack's nodes name, with its address, in
// the order they first appear.
func (s *Stack) hosts() ([][2]string, error) {
	var out [][2]string
	seen := map[string]string{}
	for _, n := range s.Nodes {
		if n.Netns == "" {
			continue
		}
		if a, ok := seen[n.Netns]; ok {
			if a != n.Host {
				return nil, fmt.Errorf("lab: host %s has two addresses, %s and %s", n.Netns, a, n.Host)
			}
			continue
		}
		seen[n.Netns] = n.Host
		out = append(out, [2]string{n.Netns, n.Host})
	}
	return out, nil
}

// network is the stack's network; an error when a node names a namespace
// and the configuration has none.
func (s *Stack) network() (Network, error) {
	if s.Config.Network == nil {
		return Network{}, errors.New("lab: nodes run in namespaces but the stack's configuration has no network")
	}
	return *s.Config.Network, nil
}

// ensureHost makes the bridge and the node's host when the node has one.
func (s *Stack) ensureHost(ctx context.Context, n *Node) error {
	if n.Netns == "" {
		return nil
	}
	nw, err := s.network()
	if err != nil {
		return err
	}
	if err := nw.Create(ctx); err != nil {
		return err
	}
	return nw.AddHost(ctx, n.Netns, n.Host)
}

// removeHosts deletes every namespace of the stack, then the bridge once
// no namespace uses it.
func (s *Stack) removeHosts(ctx context.Context) error {
	hosts, err := s.hosts()
	if err != nil || len(hosts) == 0 {
		return err
	}
	nw, err := s.network()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hosts {
		errs = append(errs, killHost(h[0]), nw.RemoveHost(ctx, h[0]))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return nw.Remove(ctx)
}

// netnsOf is the namespace of the node called name, or the namespaces of
// the nodes of the group called name (Stack.Groups: a region), each once.
func (s *Stack) netnsOf(name string) ([]string, Network, error) {
	members, group := s.Groups[name]
	if !group {
		members = []string{name}
	}
	var out []string
	for _, m := range members {
		n, err := s.Node(m)
		if err != nil {
			return nil, Network{}, err
		}
		if n.Netns == "" {
			if group {
				continue
			}
			return nil, Network{}, fmt.Errorf("lab: %s runs in the lab's own namespace: it has no link to cut", name)
		}
		if !slices.Contains(out, n.Netns) {
			out = append(out, n.Netns)
		}
	}
	if len(out) == 0 {
		return nil, Network{}, fmt.Errorf("lab: group %s has no host of its own", name)
	}
	nw, err := s.network()
	return out, nw, err
}

// setLinks sets the links of the hosts of name (a node or a group) up or
// down.
func (s *Stack) setLinks(ctx context.Context, name string, up bool) error {
	hosts, nw, err := s.netnsOf(name)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hosts {
		errs = append(errs, nw.SetLink(ctx, h, up))
	}
	return errors.Join(errs...)
}

// Cut takes the host of the node called name off the network (its link
// down), with every node on that host; its processes keep running. A
// group's name (Stack.Groups) cuts every host of the group: a region off
// the network, its clients with it.
func (s *Stack) Cut(ctx context.Context, name string) error { return s.setLinks(ctx, name, false) }

// Heal puts the host of the node called name, or every host of the group
// called name, back on the network.
func (s *Stack) Heal(ctx context.Context, name string) error { return s.setLinks(ctx, name, true) }

// CutNode is a host cut off the network, healed by its link up again.
type CutNode struct {
	Stack *Stack
	Name  string
}

// Inject implements Fault.
func (f CutNode) Inject(ctx context.Context) error { return f.Stack.Cut(ctx, f.Name) }

// Heal implements Fault.
func (f CutNode) Heal(ctx context.Context) error { return f.Stack.Heal(ctx, f.Name) }

func (f CutNode) String() string { return "cut " + f.Name }

// HostAddr is the address at (third, fourth) past the subnet's first one
// (10.201.0.0/16 with 1, 4: 10.201.1.4), a topology's fixed place for a
// host; an error when the subnet is not IPv4 or does not hold it.
func (n Network) HostAddr(third, fourth int) (string, error) {
	_, ipn, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return "", fmt.Errorf("network %s: %w", n.Subnet, err)
	}
	base := ipn.IP.To4()
	if base == nil {
		return "", fmt.Errorf("network %s is not IPv4", n.Subnet)
	}
	ip := net.IPv4(base[0], base[1], base[2]+byte(third), base[3]+byte(fourth))
	if !ipn.Contains(ip) || third < 0 || fourth < 0 || third > 255 || fourth > 255 {
		return "", fmt.Errorf("network %s is too small for a host at +%d.%d", n.Subnet, third, fourth)
	}
	return ip.String(), nil
}

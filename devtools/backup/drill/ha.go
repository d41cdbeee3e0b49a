package drill

import (
	"context"
	"fmt"
	"os"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

// patroni is the ha profile's PostgreSQL: Patroni's two members archiving
// to the repository they share (devtools/ha, PostgresHA).
type patroni struct {
	d *Drill
	p *ha.Profile
}

// buildHA lays the ha profile out under the drill's directory, on the
// network LAB_NETWORK names and Ports, its orders ending CONFIRMED as the
// single-node drill's do (no fulfillment, mail or event relay: their
// services run, unused).
func (d *Drill) buildHA(context.Context) error {
	if err := lab.Wipe(d.Data); err != nil {
		return err
	}
	ports := d.Ports
	if ports == "" {
		ports = os.Getenv("LAB_PORTS")
	}
	if ports == "" {
		// Never make run's: the drill runs beside a stack on them.
		ports = "free"
	}
	dev, err := lab.NewDev(lab.Options{Profile: "ha", Root: d.Root, Data: d.Data, Ports: ports})
	if err != nil {
		return err
	}
	cfg := dev.Config
	cfg.Env["FULFILLMENT_ENABLED"], cfg.Env["SMTP_URL"], cfg.Env["NATS_URL"] = "false", "", ""
	p, err := ha.NewProfile(cfg)
	if err != nil {
		return err
	}
	p.Out = d.Out
	d.stack, d.api, d.c = p.Stack, p.APIURL(), &patroni{d: d, p: p}
	return nil
}

func (c *patroni) up(ctx context.Context) error {
	c.d.logf("starting the ha profile on %s (Patroni archiving to %s)", c.p.Config.Network.Subnet, c.p.Postgres.Repo.Path)
	if err := c.p.Build(); err != nil {
		return err
	}
	return c.p.UpFresh(ctx)
}

func (c *patroni) backup(ctx context.Context, typ string) (backup.Info, error) {
	return c.p.Postgres.Backup(ctx, typ)
}

func (c *patroni) archived(ctx context.Context) error { return c.p.Postgres.Archived(ctx) }

func (c *patroni) repo() (backup.Server, error) { return c.p.Postgres.BackupServer(0) }

// lose is the loss of both members' hosts: every process on them killed.
// Their data directories stay where they were; the restore moves them
// aside.
func (c *patroni) lose(context.Context) error {
	c.d.logf("losing both PostgreSQL hosts (%s, %s: every process killed)", ha.MemberName(0), ha.MemberName(1))
	for i := range 2 {
		if err := c.p.Kill(ha.MemberName(i)); err != nil {
			return err
		}
	}
	return nil
}

// restore is make restore's: the writers stopped, Patroni's bootstrap of
// the first member from the repository to T, the second rebuilt as its
// replica, the stack started again. It adds what Patroni must have done as
// invariants.
func (c *patroni) restore(ctx context.Context, rep *Report) error {
	r, err := c.p.Restore(ctx, backup.Target{Time: rep.Target})
	rep.Patroni = &r
	if err != nil {
		return err
	}
	rep.RestoreTargetSeconds, rep.StackUpSeconds = r.LeaderSeconds, r.ReplicaSeconds+r.StackSeconds
	c.d.logf("restore to T: %s the leader on timeline %d after %.1fs; %s its synchronous standby %.1fs later (%s); the stack serves %.1fs after that",
		r.Leader, r.Timeline, r.LeaderSeconds, ha.MemberName(1), r.ReplicaSeconds, r.ReplicaMethod, r.StackSeconds)
	_, _, err = c.p.Postgres.Roles(ctx)
	inv := chaos.Invariant{Name: "Patroni elected a leader on the restored data and the other member streams as its synchronous standby", Checked: 1}
	if err != nil {
		inv.Counterexamples = append(inv.Counterexamples, err.Error())
	}
	rep.Invariants = append(rep.Invariants, passed(inv))
	inv = chaos.Invariant{Name: "the replica was created from the pgBackRest repository (create_replica_methods: pgbackrest)", Checked: 1}
	if r.ReplicaMethod != "pgbackrest" {
		inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s created by %s", ha.MemberName(1), r.ReplicaMethod))
	}
	rep.Invariants = append(rep.Invariants, passed(inv))
	return nil
}

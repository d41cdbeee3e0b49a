package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
)

// runToken mints a development token (HS256, AUTH_HS256_SECRET) and prints
// it: orderflow token --sub <customer> --role <role> [--ttl 1h].
func runToken(out io.Writer, lookup env, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "the token's subject: the customer id for a customer")
	role := fs.String("role", string(auth.RoleCustomer), "customer, operator or admin")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" || fs.NArg() != 0 {
		return fmt.Errorf("usage: orderflow token --sub <subject> --role customer|operator|admin [--ttl 1h]")
	}
	cfg, v := loadToken(lookup)
	if err := v.Err(); err != nil {
		return err
	}
	m, err := auth.NewMinter(cfg)
	if err != nil {
		return err
	}
	t, err := m.Mint(*sub, *ttl, auth.Role(*role))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, t)
	return err
}

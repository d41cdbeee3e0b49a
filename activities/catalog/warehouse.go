package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/db"
)

// The warehouse model (schema/0010_fulfillment.sql). A SKU's on-hand stock
// lies in warehouses: warehouse_stock.on_hand summed over them is always
// inventory.on_hand. Reservations stay per SKU; a warehouse's allocated
// units are those that shipments not yet picked up promised from it. Every
// change of on-hand is an inventory_events row naming its warehouse.

// DefaultWarehouse receives stock that arrives without a warehouse named
// (the operator's PUT of a product, a revert, the synthetic restock).
const DefaultWarehouse = "main"

// Allocation is the part of an order one warehouse ships.
type Allocation struct {
	Warehouse string           `json:"warehouse"`
	Items     []orderflow.Item `json:"items"`
}

// piece is the part of an on-hand change that one warehouse took.
type piece struct {
	Warehouse string
	Delta     int
}

// adopt files into the default warehouse the on-hand stock of a SKU that
// no warehouse holds (rows written straight into inventory, as fixtures and
// the seed do), with a relocation in the log, so that the warehouses add up
// to the SKU before its stock moves.
func adopt(ctx context.Context, tx pgx.Tx, sku string) error {
	var gap int
	const qGap = `SELECT i.on_hand - coalesce((SELECT sum(on_hand) FROM warehouse_stock w WHERE w.sku = i.sku), 0)::int
		FROM inventory i WHERE i.sku = $1`
	err := tx.QueryRow(ctx, qGap, sku).Scan(&gap)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && gap <= 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("file stock of %s in a warehouse: %w", sku, err)
	}
	if _, err := shelve(ctx, tx, sku, DefaultWarehouse, gap); err != nil {
		return err
	}
	// Into the warehouse first, then out of "no warehouse": the SKU's
	// running total in the log never dips below what is reserved.
	return relocate(ctx, tx, sku, "relocate", "", DefaultWarehouse, gap)
}

// relocate appends the pair of events that move n units of a SKU from one
// warehouse ("" for none) to another, the arrival first, so a replay of the
// log never sees the SKU short of stock in between.
func relocate(ctx context.Context, tx pgx.Tx, sku, reason, from, to string, n int) error {
	const q = `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, warehouse) VALUES ($1, $2, 0, $3, NULLIF($4, ''))`
	if _, err := tx.Exec(ctx, q, sku, n, reason, to); err != nil {
		return fmt.Errorf("append %s event of %s: %w", reason, sku, err)
	}
	if _, err := tx.Exec(ctx, q, sku, -n, reason, from); err != nil {
		return fmt.Errorf("append %s event of %s: %w", reason, sku, err)
	}
	return nil
}

// shelve applies an on-hand change of a SKU to its warehouses: stock that
// arrives goes to warehouse (the default one when ""), stock that leaves
// without a warehouse named is taken from unallocated stock, by warehouse
// priority. It returns the pieces, or errInsufficient when the warehouses
// cannot give that much.
func shelve(ctx context.Context, tx pgx.Tx, sku, warehouse string, delta int) ([]piece, error) {
	switch {
	case delta > 0:
		if warehouse == "" {
			warehouse = DefaultWarehouse
		}
		const q = `INSERT INTO warehouse_stock (sku, warehouse, on_hand) VALUES ($1, $2, $3)
			ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = warehouse_stock.on_hand + EXCLUDED.on_hand, updated_at = now()`
		if _, err := tx.Exec(ctx, q, sku, warehouse, delta); err != nil {
			return nil, fmt.Errorf("shelve %s in %s: %w", sku, warehouse, err)
		}
		return []piece{{warehouse, delta}}, nil
	case warehouse != "":
		const q = `UPDATE warehouse_stock SET on_hand = on_hand + $3, updated_at = now()
			WHERE sku = $1 AND warehouse = $2 AND on_hand + $3 >= allocated`
		tag, err := tx.Exec(ctx, q, sku, warehouse, delta)
		if err != nil {
			return nil, fmt.Errorf("take %s from %s: %w", sku, warehouse, err)
		}
		if tag.RowsAffected() == 0 {
			return nil, fmt.Errorf("%s in %s: %w", sku, warehouse, errInsufficient)
		}
		return []piece{{warehouse, delta}}, nil
	}
	const q = `SELECT w.warehouse, w.on_hand - w.allocated FROM warehouse_stock w JOIN warehouses h USING (warehouse)
		WHERE w.sku = $1 AND w.on_hand > w.allocated ORDER BY h.priority, w.warehouse FOR UPDATE OF w`
	rows, err := tx.Query(ctx, q, sku)
	if err != nil {
		return nil, fmt.Errorf("warehouses of %s: %w", sku, err)
	}
	free, err := pgx.CollectRows(rows, pgx.RowToStructByPos[piece])
	if err != nil {
		return nil, fmt.Errorf("warehouses of %s: %w", sku, err)
	}
	var out []piece
	for need := -delta; need > 0; {
		if len(free) == 0 {
			return nil, fmt.Errorf("%s: %w", sku, errInsufficient)
		}
		take := min(need, free[0].Delta)
		if _, err := tx.Exec(ctx, `UPDATE warehouse_stock SET on_hand = on_hand - $3, updated_at = now() WHERE sku = $1 AND warehouse = $2`,
			sku, free[0].Warehouse, take); err != nil {
			return nil, fmt.Errorf("take %s from %s: %w", sku, free[0].Warehouse, err)
		}
		out = append(out, piece{free[0].Warehouse, -take})
		need -= take
		free = free[1:]
	}
	return out, nil
}

// adjust changes a SKU's on-hand (through its warehouses, shelve) and
// reserved stock, and appends one event per warehouse touched; the
// reserved change rides on the first. It returns errInsufficient, changing
// nothing the caller's transaction keeps, when the SKU would break
// 0 <= reserved <= on_hand or the warehouses cannot give the stock.
func adjust(ctx context.Context, tx pgx.Tx, orderID, sku, warehouse, reason string, dOnHand, dReserved int) error {
	if err := adopt(ctx, tx, sku); err != nil {
		return err
	}
	const q = `UPDATE inventory
		SET on_hand = on_hand + $2, reserved = reserved + $3, version = version + 1, updated_at = now()
		WHERE sku = $1 AND reserved + $3 >= 0 AND reserved + $3 <= on_hand + $2`
	tag, err := tx.Exec(ctx, q, sku, dOnHand, dReserved)
	if err != nil {
		return fmt.Errorf("apply %s to %s: %w", reason, sku, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %s: %w", reason, sku, errInsufficient)
	}
	pieces, err := shelve(ctx, tx, sku, warehouse, dOnHand)
	if err != nil {
		return err
	}
	for i, p := range pieces {
		r := 0
		if i == 0 {
			r = dReserved
		}
		const qe = `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, order_id, warehouse)
			VALUES ($1, $2, $3, $4, $5, $6)`
		if _, err := tx.Exec(ctx, qe, sku, p.Delta, r, reason, nullUUID(orderID), p.Warehouse); err != nil {
			return fmt.Errorf("append %s event of %s: %w", reason, sku, err)
		}
	}
	return nil
}

func nullUUID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// Allocate promises an order's lines from warehouses, inside the caller's
// transaction: one allocation per warehouse used, the fewest warehouses
// that can cover the order when one can (by priority, then name), a line
// split across warehouses only when no single one holds all of it. It
// returns ErrUnallocatable when the warehouses' unallocated stock cannot
// cover a line (stock the operator moved away meanwhile).
func Allocate(ctx context.Context, tx pgx.Tx, items []orderflow.Item) ([]Allocation, error) {
	items = sumItems(items)
	type stock struct {
		Warehouse string
		Free      int
	}
	free := map[string][]stock{}
	for _, it := range items {
		if err := adopt(ctx, tx, it.SKU); err != nil {
			return nil, err
		}
		const q = `SELECT w.warehouse, w.on_hand - w.allocated FROM warehouse_stock w JOIN warehouses h USING (warehouse)
			WHERE w.sku = $1 AND w.on_hand > w.allocated ORDER BY h.priority, w.warehouse FOR UPDATE OF w`
		rows, err := tx.Query(ctx, q, it.SKU)
		if err != nil {
			return nil, fmt.Errorf("stock of %s: %w", it.SKU, err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stock])
		if err != nil {
			return nil, fmt.Errorf("stock of %s: %w", it.SKU, err)
		}
		free[it.SKU] = list
	}
	// Warehouses that can ship whole lines, most lines first: the order
	// then goes out in as few shipments as the stock allows.
	covers := map[string]int{}
	var order []string
	for _, it := range items {
		for _, s := range free[it.SKU] {
			if _, seen := covers[s.Warehouse]; !seen {
				order = append(order, s.Warehouse)
				covers[s.Warehouse] = 0
			}
			if s.Free >= it.Quantity {
				covers[s.Warehouse]++
			}
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return covers[order[a]] > covers[order[b]] })
	picked := map[string][]orderflow.Item{}
	for _, it := range items {
		list := free[it.SKU]
		sort.SliceStable(list, func(a, b int) bool {
			return indexOf(order, list[a].Warehouse) < indexOf(order, list[b].Warehouse)
		})
		whole := -1
		for i, s := range list {
			if s.Free >= it.Quantity {
				whole = i
				break
			}
		}
		need := it.Quantity
		if whole >= 0 {
			picked[list[whole].Warehouse] = append(picked[list[whole].Warehouse], it)
			need = 0
		}
		for _, s := range list {
			if need == 0 {
				break
			}
			take := min(need, s.Free)
			picked[s.Warehouse] = append(picked[s.Warehouse], orderflow.Item{SKU: it.SKU, Quantity: take})
			need -= take
		}
		if need > 0 {
			return nil, fmt.Errorf("%w: %s lacks %d unallocated unit(s)", ErrUnallocatable, it.SKU, need)
		}
	}
	out := make([]Allocation, 0, len(picked))
	for w, its := range picked {
		for _, it := range its {
			const q = `UPDATE warehouse_stock SET allocated = allocated + $3, updated_at = now() WHERE sku = $1 AND warehouse = $2`
			if _, err := tx.Exec(ctx, q, it.SKU, w, it.Quantity); err != nil {
				return nil, fmt.Errorf("allocate %s from %s: %w", it.SKU, w, err)
			}
		}
		out = append(out, Allocation{Warehouse: w, Items: its})
	}
	sort.Slice(out, func(a, b int) bool { return indexOf(order, out[a].Warehouse) < indexOf(order, out[b].Warehouse) })
	return out, nil
}

// ErrUnallocatable: the warehouses' unallocated stock cannot cover an order
// line.
var ErrUnallocatable = errors.New("cannot allocate")

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return len(list)
}

// Deallocate withdraws a cancelled shipment's promise from its warehouse,
// inside the caller's transaction.
func Deallocate(ctx context.Context, tx pgx.Tx, a Allocation) error {
	for _, it := range a.Items {
		const q = `UPDATE warehouse_stock SET allocated = allocated - $3, updated_at = now() WHERE sku = $1 AND warehouse = $2`
		if _, err := tx.Exec(ctx, q, it.SKU, a.Warehouse, it.Quantity); err != nil {
			return fmt.Errorf("deallocate %s from %s: %w", it.SKU, a.Warehouse, err)
		}
	}
	return nil
}

// Ship commits the stock of a shipment that left its warehouse, inside the
// caller's transaction: the units leave the SKU's on-hand and reserved
// stock and the warehouse's on-hand and allocated, the order's
// reservations count them shipped (committed once all of a SKU shipped),
// and a "ship" event naming the warehouse records each SKU. The caller
// makes it happen once per shipment (its status change).
func Ship(ctx context.Context, tx pgx.Tx, orderID string, a Allocation) error {
	for _, it := range sumItems(a.Items) {
		const qr = `UPDATE reservations SET shipped = shipped + $3,
				status = CASE WHEN shipped + $3 = quantity THEN 'committed' ELSE status END, updated_at = now()
			WHERE order_id = $1 AND sku = $2 AND status = 'held' AND shipped + $3 <= quantity`
		tag, err := tx.Exec(ctx, qr, orderID, it.SKU, it.Quantity)
		if err != nil {
			return fmt.Errorf("ship %s of %s: %w", it.SKU, orderID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("ship %s of %s: no held reservation covers %d unit(s)", it.SKU, orderID, it.Quantity)
		}
		const qa = `UPDATE warehouse_stock SET allocated = allocated - $3, updated_at = now() WHERE sku = $1 AND warehouse = $2`
		if _, err := tx.Exec(ctx, qa, it.SKU, a.Warehouse, it.Quantity); err != nil {
			return fmt.Errorf("ship %s from %s: %w", it.SKU, a.Warehouse, err)
		}
		if err := adjust(ctx, tx, orderID, it.SKU, a.Warehouse, "ship", -it.Quantity, -it.Quantity); err != nil {
			return err
		}
	}
	return nil
}

func sumItems(items []orderflow.Item) []orderflow.Item {
	lines := make([]orderflow.Line, len(items))
	for i, it := range items {
		lines[i] = orderflow.Line{SKU: it.SKU, Quantity: it.Quantity}
	}
	return perSKU(lines)
}

// WarehouseStock is one warehouse's stock of a SKU.
type WarehouseStock struct {
	Warehouse string `json:"warehouse"`
	OnHand    int    `json:"on_hand"`
	Allocated int    `json:"allocated"`
}

// Warehouses returns a SKU's stock per warehouse, in warehouse order.
func (s Store) Warehouses(ctx context.Context, sku string) ([]WarehouseStock, error) {
	return warehouses(ctx, s.DB, sku)
}

func warehouses(ctx context.Context, q activities.Querier, sku string) ([]WarehouseStock, error) {
	rows, err := q.Query(ctx, `SELECT warehouse, on_hand, allocated FROM warehouse_stock WHERE sku = $1 ORDER BY warehouse`, sku)
	if err != nil {
		return nil, fmt.Errorf("warehouses of %s: %w", sku, err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[WarehouseStock])
	if err != nil {
		return nil, fmt.Errorf("warehouses of %s: %w", sku, err)
	}
	return list, nil
}

// Transfer errors.
var (
	// ErrNoSuchSKU: the SKU has no inventory.
	ErrNoSuchSKU = errors.New("no such sku")
	// ErrTransferTooLarge: the source warehouse has fewer unallocated units.
	ErrTransferTooLarge = errors.New("not enough unallocated stock in the source warehouse")
)

// Transfer moves unallocated units of a SKU from one warehouse to another
// (created, with the name given, when it does not exist), with a pair of
// "transfer" events; the SKU's stock is unchanged.
func (s Store) Transfer(ctx context.Context, sku, from, to string, quantity int) error {
	return db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inventory WHERE sku = $1)`, sku).Scan(&found); err != nil {
			return fmt.Errorf("read %s: %w", sku, err)
		}
		if !found {
			return ErrNoSuchSKU
		}
		if err := adopt(ctx, tx, sku); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO warehouses (warehouse, name) VALUES ($1, $1) ON CONFLICT DO NOTHING`, to); err != nil {
			return fmt.Errorf("create warehouse %s: %w", to, err)
		}
		const qOut = `UPDATE warehouse_stock SET on_hand = on_hand - $3, updated_at = now()
			WHERE sku = $1 AND warehouse = $2 AND on_hand - allocated >= $3`
		tag, err := tx.Exec(ctx, qOut, sku, from, quantity)
		if err != nil {
			return fmt.Errorf("transfer %s out of %s: %w", sku, from, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrTransferTooLarge
		}
		if _, err := shelve(ctx, tx, sku, to, quantity); err != nil {
			return err
		}
		return relocate(ctx, tx, sku, "transfer", from, to, quantity)
	})
}

// WarehouseReplay is what a SKU's events add up to in each warehouse, and
// what its warehouse_stock rows hold.
type WarehouseReplay struct {
	Events map[string]int // warehouse -> sum of delta_on_hand
	Rows   map[string]int // warehouse -> warehouse_stock.on_hand
	// Unfiled is the on-hand the log holds outside any warehouse: 0 once
	// the SKU's stock is all in warehouses.
	Unfiled int
}

// ReplayWarehouses sums a SKU's inventory_events per warehouse, the audit
// that the log explains every warehouse's stock. q is a pool, or a
// transaction whose snapshot the caller reads the SKU's row in too.
func ReplayWarehouses(ctx context.Context, q activities.Querier, sku string) (WarehouseReplay, error) {
	r := WarehouseReplay{Events: map[string]int{}, Rows: map[string]int{}}
	rows, err := q.Query(ctx, `SELECT coalesce(warehouse, ''), sum(delta_on_hand)::int FROM inventory_events WHERE sku = $1 GROUP BY 1`, sku)
	if err != nil {
		return r, fmt.Errorf("events of %s: %w", sku, err)
	}
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			rows.Close()
			return r, fmt.Errorf("events of %s: %w", sku, err)
		}
		if w == "" {
			r.Unfiled = n
		} else if n != 0 {
			r.Events[w] = n
		}
	}
	rows.Close()
	list, err := warehouses(ctx, q, sku)
	if err != nil {
		return r, err
	}
	for _, w := range list {
		if w.OnHand != 0 {
			r.Rows[w.Warehouse] = w.OnHand
		}
	}
	return r, nil
}

// Restock puts units that came back (a return) on the shelf of a warehouse
// ("" for the default one), inside the caller's transaction, with a
// reason-named event naming the order.
func Restock(ctx context.Context, tx pgx.Tx, orderID, sku, warehouse, reason string, quantity int) error {
	return adjust(ctx, tx, orderID, sku, warehouse, reason, quantity, 0)
}

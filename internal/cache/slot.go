package cache

// Redis Cluster puts each key in one of 16384 hash slots and refuses a
// command whose keys lie in different slots (CROSSSLOT). The functions here
// group keys by slot so that multi-key calls work against a cluster as well
// as against one server or a Sentinel-managed master.

// Slots is the number of Redis Cluster hash slots.
const Slots = 16384

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key, or
// of its hash tag (the part between the first "{" and the next "}", when
// not empty), modulo 16384. Keys that share a hash tag share a slot.
func Slot(key string) int {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					break
				}
			}
			break
		}
	}
	return int(crc16(key) % Slots)
}

// BySlot groups the indexes of keys by hash slot, each group in the order
// of keys and the groups in the order of their first key.
func BySlot(keys []string) [][]int {
	var groups [][]int
	at := map[int]int{}
	for i, k := range keys {
		s := Slot(k)
		g, ok := at[s]
		if !ok {
			g = len(groups)
			at[s] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

func pick(keys []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = keys[j]
	}
	return out
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis
// Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

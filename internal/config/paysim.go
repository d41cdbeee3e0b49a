package config

import (
	"fmt"
	"time"
)

// Paysim configures one simulated payment provider process
// (`orderflow paysim`): where it listens (PAYSIM_ADDR), its instance name,
// which scopes its ledger in the database (PAYSIM_NAME), and the faults it
// injects from the start (PAYSIM_LATENCY, PAYSIM_ERROR_RATE, PAYSIM_OUTAGE,
// PAYSIM_TIMEOUT_RATE, PAYSIM_LOST_ANSWER_RATE); PUT /admin/faults changes
// them at run time. Only DatabaseURL, LogFormat and LogLevel of Common apply.
type Paysim struct {
	Common
	Addr           string
	Name           string
	Latency        time.Duration
	ErrorRate      float64
	Outage         bool
	TimeoutRate    float64
	LostAnswerRate float64
}

// LoadPaysim reads a simulated provider's settings.
func LoadPaysim() Paysim {
	return Paysim{
		Common:         LoadCommon(),
		Addr:           Env("PAYSIM_ADDR", ":8090"),
		Name:           Env("PAYSIM_NAME", "paysim-a"),
		Latency:        EnvDuration("PAYSIM_LATENCY", 0),
		ErrorRate:      EnvFloat("PAYSIM_ERROR_RATE", 0),
		Outage:         Env("PAYSIM_OUTAGE", "false") == "true",
		TimeoutRate:    EnvFloat("PAYSIM_TIMEOUT_RATE", 0),
		LostAnswerRate: EnvFloat("PAYSIM_LOST_ANSWER_RATE", 0),
	}
}

// String renders the settings for the start-up log line, secrets masked.
func (p Paysim) String() string {
	return fmt.Sprintf("name=%s addr=%s database=%s latency=%s error_rate=%g outage=%t timeout_rate=%g lost_answer_rate=%g",
		p.Name, p.Addr, Mask(p.DatabaseURL), p.Latency, p.ErrorRate, p.Outage, p.TimeoutRate, p.LostAnswerRate)
}

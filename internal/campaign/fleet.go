package campaign

import (
	"mailout/internal/smtpclient"
	"mailout/internal/store/postgres"
)

// IsPostgresURL reports whether a --db value names a PostgreSQL database
// (postgres:// or postgresql://: the database of a fleet of workers)
// rather than a SQLite file.
func IsPostgresURL(db string) bool { return postgres.IsURL(db) }

// DatabaseName names a --db value in messages: a file as given, a URL
// with its password replaced.
func DatabaseName(db string) string {
	if postgres.IsURL(db) {
		return postgres.Redact(db)
	}
	return db
}

// CheckHELO checks a name given for EHLO (a worker's own --helo).
func CheckHELO(name string) error {
	_, err := smtpclient.EHLOName(name)
	return err
}

package campaign

import "mailout/internal/smtpclient"

// CheckHELO checks a name given for EHLO (a worker's own --helo).
func CheckHELO(name string) error {
	_, err := smtpclient.EHLOName(name)
	return err
}

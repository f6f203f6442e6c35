package doctor

import (
	"fmt"
	"io"
)

// WriteText writes the checklist (one line per finding with its evidence),
// the verdict and what to do, in lang ("en" or "es"; anything else is en).
func (r *Report) WriteText(w io.Writer, lang string) {
	if lang != "es" {
		lang = "en"
	}
	ui := uiTexts[lang]
	if r.From != "" {
		fmt.Fprintf(w, "%s: %s — %s: %s\n\n", ui["sender"], r.From, ui["route"], r.Route)
	} else {
		fmt.Fprintf(w, "%s: %s\n\n", ui["header"], r.Route)
	}
	for _, f := range r.Findings {
		line := fmt.Sprintf("[%s] %s", ui[string(f.Severity)], checkTitle(f.ID, lang))
		if f.Subject != "" {
			line += " — " + f.Subject
		}
		line += ": " + f.Code
		fmt.Fprintln(w, line)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "       %s\n", e)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\n%s\n", ui["problems"])
		for _, v := range r.Problems {
			fmt.Fprintf(w, "[%s] %s (%s)", ui[string(v.Severity)], v.Title[lang], v.ID)
			if v.Subject != "" {
				fmt.Fprintf(w, " — %s", v.Subject)
			}
			fmt.Fprintf(w, "\n       %s\n", v.Advice[lang])
			if v.Suggest != "" {
				fmt.Fprintf(w, "       %s: %s\n", ui["suggest"], v.Suggest)
			}
		}
	}
	if len(r.Accounts) > 1 {
		fmt.Fprintf(w, "\n%s\n", ui["accounts"])
		for _, v := range r.Accounts {
			fmt.Fprintf(w, "  %s: %s\n", v.Subject, v.ID)
		}
	}
	fmt.Fprintf(w, "\n%s: %s (%s)\n", ui["verdict"], r.Verdict.Title[lang], r.Verdict.ID)
	if r.Verdict.Subject != "" {
		fmt.Fprintf(w, "  %s\n", r.Verdict.Subject)
	}
	fmt.Fprintf(w, "%s: %s\n", ui["todo"], r.Verdict.Advice[lang])
	if r.Verdict.Suggest != "" {
		fmt.Fprintf(w, "%s: %s\n", ui["suggest"], r.Verdict.Suggest)
	}
	if r.From != "" {
		fmt.Fprintf(w, "\n%s\n", ui["bulk"])
	}
}

// Advice returns the verdict's advice in lang.
func (r *Report) Advice(lang string) string {
	if lang != "es" {
		lang = "en"
	}
	return r.Verdict.Advice[lang]
}

// CheckTitle is the title of the check id in lang ("en" or "es";
// anything else is en), as the checklist prints it; an unknown id is
// returned as it is.
func CheckTitle(id, lang string) string {
	if lang != "es" {
		lang = "en"
	}
	return checkTitle(id, lang)
}

func checkTitle(id, lang string) string {
	if t, ok := checkTitles[lang][id]; ok {
		return t
	}
	return id
}

var uiTexts = map[string]map[string]string{
	"en": {"header": "mailout doctor — route", "pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP",
		"verdict": "Verdict", "todo": "What to do", "suggest": "Try", "accounts": "Relay accounts:",
		"sender": "mailout doctor — sender", "route": "route", "problems": "To fix or look at:",
		"bulk": "Large mailbox providers also require of bulk senders a one-click unsubscribe in every message (List-Unsubscribe and List-Unsubscribe-Post, RFC 8058) and a spam complaint rate under 0.3%."},
	"es": {"header": "mailout doctor — ruta", "pass": " OK ", "warn": "AVISO", "fail": "FALLA", "skip": "OMITIDO",
		"verdict": "Diagnóstico", "todo": "Qué hacer", "suggest": "Pruebe", "accounts": "Cuentas de relay:",
		"sender": "mailout doctor — remitente", "route": "ruta", "problems": "Para corregir o revisar:",
		"bulk": "Los grandes proveedores de correo exigen además a quien envía en masa una baja con un solo clic en cada mensaje (List-Unsubscribe y List-Unsubscribe-Post, RFC 8058) y una tasa de quejas por spam inferior al 0,3 %."},
}

var checkTitles = map[string]map[string]string{
	"en": {
		"dns.servers":      "DNS servers in use",
		"dns.udp":          "DNS on port 53 (UDP)",
		"dns.tcp":          "DNS on port 53 (TCP)",
		"dns.mx":           "MX lookup",
		"smtp.port25":      "TCP connect to port 25",
		"smtp.banner":      "SMTP banner",
		"smtp.identity":    "banner name matches the MX host",
		"smtp.ehlo":        "EHLO",
		"smtp.starttls":    "STARTTLS and certificate",
		"smtp.rcpt":        "MAIL FROM + RCPT TO the domain's postmaster (then RSET)",
		"relay.config":     "relay account",
		"relay.resolve":    "relay host name resolves",
		"relay.connect":    "TCP connect to the relay port",
		"relay.probe":      "other usual port",
		"relay.banner":     "SMTP banner",
		"relay.tls-mode":   "TLS mode matches the port",
		"relay.tls":        "TLS and certificate",
		"relay.ehlo":       "EHLO",
		"relay.auth":       "login (AUTH)",
		"relay.rcpt":       "MAIL FROM + RCPT TO a test address (then RSET)",
		"relay.session":    "SMTP session",
		"sender.config":    "sender address",
		"sender.source":    "sending address of the route",
		"sender.spf":       "SPF record of the return path's domain",
		"sender.spf-route": "SPF authorises the sending address",
		"sender.dkim":      "DKIM key record",
		"sender.dmarc":     "DMARC record",
		"sender.alignment": "DMARC alignment of DKIM or SPF with From",
		"sender.fcrdns":    "reverse DNS of the sending address (forward-confirmed)",
		"sender.helo":      "EHLO name resolves to the sending address",
	},
	"es": {
		"dns.servers":      "servidores DNS en uso",
		"dns.udp":          "DNS en el puerto 53 (UDP)",
		"dns.tcp":          "DNS en el puerto 53 (TCP)",
		"dns.mx":           "consulta MX",
		"smtp.port25":      "conexión TCP al puerto 25",
		"smtp.banner":      "saludo SMTP",
		"smtp.identity":    "el nombre del saludo corresponde al servidor MX",
		"smtp.ehlo":        "EHLO",
		"smtp.starttls":    "STARTTLS y certificado",
		"smtp.rcpt":        "MAIL FROM + RCPT TO al postmaster del dominio (luego RSET)",
		"relay.config":     "cuenta del servidor SMTP",
		"relay.resolve":    "el nombre del servidor SMTP existe",
		"relay.connect":    "conexión TCP al puerto del servidor SMTP",
		"relay.probe":      "otro puerto habitual",
		"relay.banner":     "saludo SMTP",
		"relay.tls-mode":   "el modo TLS corresponde al puerto",
		"relay.tls":        "TLS y certificado",
		"relay.ehlo":       "EHLO",
		"relay.auth":       "autenticación (AUTH)",
		"relay.rcpt":       "MAIL FROM + RCPT TO a una dirección de prueba (luego RSET)",
		"relay.session":    "sesión SMTP",
		"sender.config":    "dirección del remitente",
		"sender.source":    "dirección de envío de la ruta",
		"sender.spf":       "registro SPF del dominio de la dirección de retorno",
		"sender.spf-route": "SPF autoriza la dirección de envío",
		"sender.dkim":      "registro DNS de la clave DKIM",
		"sender.dmarc":     "registro DMARC",
		"sender.alignment": "alineación DMARC de DKIM o SPF con el From",
		"sender.fcrdns":    "DNS inverso de la dirección de envío (confirmado)",
		"sender.helo":      "el nombre EHLO apunta a la dirección de envío",
	},
}

type verdictText struct{ title, advice string }

// verdictTexts follow the troubleshooting guide's situations and wording;
// docs/troubleshooting.md maps each one to the guide.
var verdictTexts = map[string]map[string]verdictText{
	"en": {
		VerdictOK: {"the route works",
			"Nothing on the way stops mail from getting out (a warning above is worth a look, but is no fault). Send a small test campaign first, with the slow speed profile."},
		VerdictDNSBlocked: {"DNS (port 53) is blocked",
			"No DNS server answers on port 53: a firewall, an antivirus \"Internet worm protection\" or your gateway blocks MX queries. Allow port 53 for mailout (on this computer and on the gateway), or enter your ISP's DNS server by IP (--dns). If nothing helps, your ISP blocks direct delivery: send through your provider's SMTP server (--relay)."},
		VerdictDNSRefused: {"the DNS server refuses to answer",
			"The DNS server in use refuses our queries (or nothing listens on its port 53): enter your ISP's DNS server by IP (--dns), or allow port 53 in your firewall."},
		VerdictDNSNoServer: {"no DNS server is configured",
			"This computer has no DNS server configured: enter your ISP's DNS server by IP (--dns)."},
		VerdictMXLookupFailed: {"no MX lookup succeeded",
			"The DNS server answers, but the mail servers of none of the domains could be found: check the domains, or enter your ISP's DNS server by IP (--dns)."},
		VerdictPort25Blocked: {"port 25 is blocked",
			"Port 25 is blocked on the way out — by a firewall, an antivirus, your gateway or your ISP: the connections are silently dropped. Allow port 25 for mailout (on this computer and on the gateway). Many ISPs block direct delivery on purpose, and there is no way around that: send through your provider's SMTP server instead (--relay)."},
		VerdictPort25Refused: {"port 25 connections are refused",
			"Every connection to port 25 is refused right away: a firewall or antivirus on this computer or the gateway rejects them, or your ISP does. Allow port 25 for mailout, or send through your provider's SMTP server (--relay)."},
		VerdictNoRoute: {"no route to the servers",
			"This computer has no route to the servers: check the network connection and the gateway, or ask your network administrator."},
		VerdictPort25Intercept: {"something intercepts port 25",
			"The same machine answers for every domain's mail server: an antivirus, your gateway or your ISP intercepts port 25. Turn off the antivirus's mail scanning or worm protection, or send through your provider's SMTP server (--relay)."},
		VerdictTLSIntercepted: {"the secure connection is intercepted",
			"The secure connection is answered with a certificate that is not the server's own — from the relay, one issued by an authority this computer does not trust; on the direct route, one certificate (or one unknown authority) for the mail servers of unrelated domains: an antivirus or firewall that scans outgoing mail is probably in the middle. Turn off its outgoing-mail scanning. If your provider really uses a private certificate authority, give it with --relay-ca."},
		VerdictSMTPRejected: {"the mail servers refuse to talk to us",
			"The mail servers answer but refuse us before any message: your address may be on a block list, or your ISP forbids direct delivery. Send through your provider's SMTP server (--relay)."},
		VerdictRelayHostUnknown: {"the SMTP server's name does not exist",
			"The SMTP server name {host} does not exist: copy it exactly as your provider gives it. Do not guess: ask your provider for the server, port, user name and password."},
		VerdictRelayDNS: {"the SMTP server's name cannot be looked up",
			"The DNS server does not answer, so the SMTP server's name cannot be looked up: check your network connection, allow port 53, or enter your ISP's DNS server by IP (--dns)."},
		VerdictRelayWrongPort: {"wrong port",
			"Nothing usable answers on the configured port, but the same server answers on another one: use {suggest} (ask your provider which port to use: usually 587 with STARTTLS or 465 with TLS)."},
		VerdictRelayRefused: {"wrong IP or service unavailable",
			"\"Wrong IP or service unavailable\": the connection is refused and no usual port answers: the SMTP server's name or port is wrong, or the service is down. Check them with your provider; then try turning off your antivirus, or ask your network administrator."},
		VerdictRelayBlocked: {"the SMTP server's port is blocked",
			"The SMTP server does not answer on that port and no other usual port answers: a firewall, an antivirus or your gateway blocks it, or the name or port is wrong. Allow mailout through your firewall (and on the gateway), and check the server and port with your provider."},
		VerdictTLSModeMismatch: {"TLS mode does not match the port",
			"The port speaks the other kind of TLS: port 465 wants TLS from the start (smtps://), ports 587 and 25 want STARTTLS (smtp://). Use {suggest}."},
		VerdictRelayTLSFailed: {"the secure connection failed",
			"The secure connection to the SMTP server failed: check the port and the TLS setting your provider gives (587 with STARTTLS, 465 with TLS), and turn off your antivirus's outgoing-mail scanning, which intercepts it."},
		VerdictAuthRequired: {"authentication required",
			"The SMTP server is there, but won't send mail for you without logging in: set the user name and password of your account with that provider (smtp://user@host:587 with --relay-password-env)."},
		VerdictAuthFailed: {"wrong user name or password",
			"The server refused the user name or password: check them with your provider (some providers want an app password). The network settings are fine."},
		VerdictAuthUnavailable: {"the server offers no login",
			"You gave a user name, but the server offers no login on this port (or none mailout supports): use your provider's submission port (587 with STARTTLS or 465 with TLS)."},
		VerdictRelayDenied: {"the server won't relay for you",
			"The SMTP server is there but won't relay for you: authenticate, or use the SMTP server of the provider you are connected through. The network settings are fine; ask your provider for help with authentication."},
		VerdictSenderRejected: {"the sender address is refused",
			"The SMTP server refuses the sender address: send from an address of your account with that provider (--from)."},
		VerdictRelayProtocol: {"the SMTP server answered unexpectedly",
			"The server at that address does not behave like an SMTP server we can use: check the server and port with your provider, or ask your network administrator."},
	},
	"es": {
		VerdictOK: {"la ruta funciona",
			"Nada en el camino impide que el correo salga (conviene revisar los avisos de más arriba, si los hay, pero no son fallas). Haga primero un envío pequeño de prueba a baja velocidad (perfil «lento»)."},
		VerdictDNSBlocked: {"el DNS (puerto 53) está bloqueado",
			"Ningún servidor DNS responde en el puerto 53: un firewall, la «protección de gusanos de Internet» de un antivirus o su gateway bloquean las consultas MX. Permita el puerto 53 para mailout (en su Pc y en el gateway), o ingrese manualmente la dirección IP del servidor DNS de su proveedor (--dns). Si nada de esto ayuda, su proveedor de Internet bloquea la entrega directa: envíe mediante el servidor Smtp de su proveedor (--relay)."},
		VerdictDNSRefused: {"el servidor DNS se niega a responder",
			"El servidor DNS en uso rechaza nuestras consultas (o nada escucha en su puerto 53): ingrese manualmente la dirección IP del servidor DNS de su proveedor (--dns), o permita el puerto 53 en su firewall."},
		VerdictDNSNoServer: {"no hay ningún servidor DNS configurado",
			"Este equipo no tiene servidor DNS configurado: ingrese manualmente la dirección IP del servidor DNS de su proveedor (--dns)."},
		VerdictMXLookupFailed: {"ninguna consulta MX tuvo éxito",
			"El servidor DNS responde, pero no se encontraron los servidores de correo de ningún dominio: compruebe los dominios, o ingrese manualmente el servidor DNS de su proveedor (--dns)."},
		VerdictPort25Blocked: {"el puerto 25 está bloqueado",
			"El puerto 25 está bloqueado a la salida — por un firewall, un antivirus, su gateway o su proveedor de Internet: las conexiones se descartan en silencio. Permita el puerto 25 para mailout (en su Pc y en el gateway). Muchos proveedores bloquean la entrega directa a propósito, y no existe solución: envíe mediante el servidor Smtp de su proveedor (--relay)."},
		VerdictPort25Refused: {"las conexiones al puerto 25 son rechazadas",
			"Todas las conexiones al puerto 25 se rechazan de inmediato: un firewall o antivirus en su Pc o en el gateway, o su proveedor de Internet, las rechaza. Permita el puerto 25 para mailout, o envíe mediante el servidor Smtp de su proveedor (--relay)."},
		VerdictNoRoute: {"no hay ruta hacia los servidores",
			"Este equipo no tiene ruta hacia los servidores: compruebe la conexión de red y el gateway, o solicite asistencia a su administrador de red."},
		VerdictPort25Intercept: {"algo intercepta el puerto 25",
			"La misma máquina responde por el servidor de correo de todos los dominios: un antivirus, su gateway o su proveedor intercepta el puerto 25. Desactive la comprobación de correo o la protección de gusanos del antivirus, o envíe mediante el servidor Smtp de su proveedor (--relay)."},
		VerdictTLSIntercepted: {"la conexión segura está interceptada",
			"La conexión segura responde con un certificado que no es el del servidor — del servidor Smtp, uno emitido por una autoridad en la que este equipo no confía; en el envío directo, un mismo certificado (o una misma autoridad desconocida) para los servidores de correo de dominios no relacionados: probablemente un antivirus o firewall que comprueba el correo saliente está en el medio. Desactive la comprobación de correo saliente. Si su proveedor usa de verdad una autoridad de certificación propia, indíquela con --relay-ca."},
		VerdictSMTPRejected: {"los servidores de correo no desean hablar con usted",
			"Los servidores de correo responden pero nos rechazan antes de cualquier mensaje: su dirección puede estar en una lista de bloqueo, o su proveedor prohíbe la entrega directa. Envíe mediante el servidor Smtp de su proveedor (--relay)."},
		VerdictRelayHostUnknown: {"el nombre del servidor Smtp no existe",
			"El nombre de servidor Smtp {host} no existe: cópielo exactamente como se lo da su proveedor. No existe posibilidad de «adivinar»: solicite a su proveedor el servidor, puerto, nombre de usuario y contraseña."},
		VerdictRelayDNS: {"no se puede consultar el nombre del servidor Smtp",
			"El servidor DNS no responde, por eso no se puede consultar el nombre del servidor Smtp: compruebe la conexión de red, permita el puerto 53, o ingrese manualmente el servidor DNS de su proveedor (--dns)."},
		VerdictRelayWrongPort: {"puerto incorrecto",
			"Nada utilizable responde en el puerto configurado, pero el mismo servidor responde en otro: use {suggest} (pregunte a su proveedor qué puerto usar: normalmente 587 con STARTTLS o 465 con TLS)."},
		VerdictRelayRefused: {"IP incorrecta o servicio no disponible",
			"«IP incorrecta o servicio no disponible»: la conexión es rechazada y ningún puerto habitual responde: el nombre del servidor Smtp o el puerto son incorrectos, o el servicio no funciona. Compruébelos con su proveedor; luego intente desactivar su antivirus, o solicite asistencia a su administrador de red."},
		VerdictRelayBlocked: {"el puerto del servidor Smtp está bloqueado",
			"El servidor Smtp no responde en ese puerto y ningún otro puerto habitual responde: un firewall, un antivirus o su gateway lo bloquea, o el nombre o el puerto son incorrectos. Permita a mailout conectarse a través de su firewall (y del gateway), y compruebe servidor y puerto con su proveedor."},
		VerdictTLSModeMismatch: {"el modo TLS no corresponde al puerto",
			"El puerto habla el otro tipo de TLS: el puerto 465 espera TLS desde el inicio (smtps://), los puertos 587 y 25 esperan STARTTLS (smtp://). Use {suggest}."},
		VerdictRelayTLSFailed: {"falló la conexión segura",
			"Falló la conexión segura con el servidor Smtp: compruebe el puerto y el modo TLS que indica su proveedor (587 con STARTTLS, 465 con TLS), y desactive la comprobación de correo saliente de su antivirus, que la intercepta."},
		VerdictAuthRequired: {"se requiere autenticación",
			"El servidor Smtp está ahí, pero no enviará correo por usted sin autenticarse: indique el nombre de usuario y la contraseña de su cuenta con ese proveedor (smtp://usuario@servidor:587 con --relay-password-env)."},
		VerdictAuthFailed: {"usuario o contraseña incorrectos",
			"El servidor rechazó el nombre de usuario o la contraseña: compruébelos con su proveedor (algunos piden una contraseña de aplicación). La configuración de la red es correcta."},
		VerdictAuthUnavailable: {"el servidor no ofrece autenticación",
			"Indicó un nombre de usuario, pero el servidor no ofrece autenticación en este puerto (o ninguna que mailout admita): use el puerto de envío de su proveedor (587 con STARTTLS o 465 con TLS)."},
		VerdictRelayDenied: {"el servidor no envía correo por usted",
			"El servidor Smtp está ahí pero no desea hablar con usted: necesita autenticarse, o está utilizando el servidor Smtp de otro proveedor de Internet. La configuración de la red es correcta; solicite ayuda a su proveedor para la autenticación."},
		VerdictSenderRejected: {"la dirección del remitente es rechazada",
			"El servidor Smtp rechaza la dirección del remitente: envíe desde una dirección de su cuenta con ese proveedor (--from)."},
		VerdictRelayProtocol: {"el servidor Smtp respondió de forma inesperada",
			"El servidor en esa dirección no se comporta como un servidor Smtp utilizable: compruebe servidor y puerto con su proveedor, o solicite asistencia a su administrador de red."},
	},
}

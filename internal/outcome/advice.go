package outcome

import "mailout/internal/route"

// Advice texts follow the network-troubleshooting guide of the desktop
// product mailout grows from: direct sending needs
// ports 53 (DNS) and 25 (SMTP) open through the firewall, the antivirus
// ("worm protection"), the LAN gateway and the ISP; a relay needs exactly
// the provider's host, port, user and password, and the ISP's own server
// unless a dedicated SMTP service is paid for; "the server is there but won't
// talk to you" means authentication or the wrong provider's server; "wrong
// IP or service unavailable" means a wrong host/port or a network problem.

type adviceKey struct {
	class Class
	route route.Route // "" = any route
}

// Advice returns one or two sentences telling a person what the class means
// and what to do, for route r (route.Relay or route.Direct) in lang ("en" or
// "es"; anything else gives English).
func Advice(c Class, r route.Route, lang string) string {
	texts := adviceEN
	if lang == "es" {
		texts = adviceES
	}
	if s, ok := texts[adviceKey{c, r}]; ok {
		return s
	}
	if s, ok := texts[adviceKey{c, ""}]; ok {
		return s
	}
	return texts[adviceKey{"", ""}]
}

var adviceEN = map[adviceKey]string{
	{"", ""}: "The attempt failed for a reason mailout does not know; see the server's reply in the log.",

	{Delivered, ""}: "The server accepted the message.",

	{DNSUnreachable, route.Direct}: "The DNS server does not answer (port 53): a firewall, an antivirus \"worm protection\" or your gateway may block MX queries. Allow port 53, or enter your ISP's DNS server by IP (--dns).",
	{DNSUnreachable, route.Relay}:  "The relay's name could not be looked up because the DNS server does not answer: check your network connection, or enter your ISP's DNS server by IP (--dns).",

	{DNSNXDomain, route.Direct}: "The recipient's domain does not exist: the address is probably mistyped.",
	{DNSNXDomain, route.Relay}:  "The relay's host name does not exist: copy the SMTP server's name exactly as your provider gives it.",

	{NoMailServer, route.Direct}: "The recipient's domain does not receive e-mail (no mail server): the address cannot be delivered to.",
	{NoMailServer, route.Relay}:  "The relay's host name has no address: copy the SMTP server's name exactly as your provider gives it.",

	{ConnectTimeout, route.Direct}: "Port 25 looks blocked — by a firewall, an antivirus, your gateway or your ISP. Allow it, or send through your provider's SMTP server (--route relay).",
	{ConnectTimeout, route.Relay}:  "The relay does not answer on that port: a firewall, an antivirus or your gateway may block it, or the host or port is wrong. Check them with your provider (often 587 or 465).",

	{ConnectRefused, route.Direct}: "The recipient's mail server refused the connection; it may be down. mailout will try its other servers and retry later.",
	{ConnectRefused, route.Relay}:  "Nothing answers on that port: check the relay's host name and port with your provider (often 587 or 465).",

	{NetworkUnreachable, ""}: "Your computer has no route to that server: check your network connection and your gateway.",

	{TLSFailed, route.Direct}: "The secure connection to the recipient's server failed. If it fails for every domain, an antivirus or firewall that inspects e-mail is probably in the way: turn off its outgoing-mail scanning.",
	{TLSFailed, route.Relay}:  "The secure connection to the relay failed: check the port and TLS setting your provider gives (587 with STARTTLS or 465 with TLS), and turn off your antivirus's outgoing-mail scanning, which intercepts it.",

	// On the direct route, an MX that refuses us is DomainNotHosted: the
	// direct texts of these three are about a hybrid route's fallback relay.
	{AuthRequired, route.Relay}:  "The server wants you to log in: set the user name and password of your account with that provider.",
	{AuthRequired, route.Direct}: "The fallback relay (--fallback-relay) wants you to log in: set the user name and password of your account with that provider.",

	{AuthFailed, route.Relay}:  "The server refused your user name or password: type them exactly as your provider gives them (some providers need an app password). Sending is stopped so your account is not locked.",
	{AuthFailed, route.Direct}: "The fallback relay (--fallback-relay) refused your user name or password: type them exactly as your provider gives them (some providers need an app password). Sending is stopped so your account is not locked.",

	{RelayDenied, route.Relay}:  "The server is there but won't relay for you: authenticate with your account, or use the SMTP server of the provider you are connected through.",
	{RelayDenied, route.Direct}: "The fallback relay (--fallback-relay) is there but won't relay for you: authenticate with your account, or use the SMTP server of the provider you are connected through.",

	{SenderRejected, route.Direct}: "The receiving server refuses your sender address or your IP (often a blocklist, or an IP that must not send directly): check the From address, or send through your provider's SMTP server (--route relay).",
	{SenderRejected, route.Relay}:  "The server refuses your sender address: use a From address your account is allowed to send as.",

	{RecipientUnknown, ""}: "The recipient's mailbox does not exist; the address is added to the suppression list and not tried again.",

	{MailboxFull, ""}: "The recipient's mailbox is full; mailout retries until the campaign's maximum age.",

	{Greylisted, ""}: "The receiving server asked to come back later (greylisting); mailout retries on its own — nothing to do.",

	{Temporary, ""}: "The server reported a temporary problem; mailout retries later on its own.",

	{RateLimited, route.Direct}: "The receiving server says you send too fast: mailout slows down for that domain on its own; if it keeps happening, use a slower speed profile.",
	{RateLimited, route.Relay}:  "Your provider limits how fast (or how much per day) you may send: mailout slows down; choose a slower speed profile or ask your provider about its limits.",

	{ContentRejected, ""}: "The server refused the message as spam or by policy (for example DMARC, SPF or DKIM): check your sending domain's SPF, DKIM and DMARC records and the message content.",

	{SenderUnauthenticated, ""}: "Receivers refuse your mail because your sending domain fails their authentication checks (SPF, DKIM, DMARC or reverse DNS). Check it with mailout doctor --sender YOUR-FROM-ADDRESS (or the Doctor page), publish or fix the records it names, then resume: the recipients are kept to send.",

	{ProtocolError, ""}: "The conversation with the server broke off (no answer, unexpected close or garbled reply); mailout retries later. If it happens everywhere, an antivirus that scans outgoing mail may be interfering.",

	{ProhibitedDestination, ""}: "The recipient's domain points at an address mailout refuses to send to (this machine, a private network or a cloud metadata address).",

	{RenderFailed, ""}: "The message could not be built for this recipient: check the template and this recipient's fields.",

	{DomainNotHosted, ""}: "The mail server of the recipient's domain refuses mail for it: the domain's MX record is probably stale or the domain abandoned. Check the address with the recipient; if every domain answers like this, run mailout doctor.",

	{CrashLoop, ""}: "mailout stopped several times while sending to this recipient, so it was given up on and the rest of the list went on; it may have received the message. Update mailout or report the problem, then send again with: mailout retry CAMPAIGN --class crash-loop.",

	{Permanent, ""}: "The server refused the message for good; its reply says why.",
}

var adviceES = map[adviceKey]string{
	{"", ""}: "El intento falló por un motivo que mailout no reconoce; consulte la respuesta del servidor en el registro.",

	{Delivered, ""}: "El servidor aceptó el mensaje.",

	{DNSUnreachable, route.Direct}: "El servidor DNS no responde (puerto 53): un firewall, la «protección de gusanos de Internet» de su antivirus o el gateway pueden estar bloqueando las consultas MX. Permita el puerto 53, o ingrese manualmente la IP del DNS de su proveedor (--dns).",
	{DNSUnreachable, route.Relay}:  "No se pudo consultar el nombre del servidor Smtp porque el servidor DNS no responde: compruebe su conexión, o ingrese manualmente la IP del DNS de su proveedor (--dns).",

	{DNSNXDomain, route.Direct}: "El dominio del destinatario no existe: probablemente la dirección está mal escrita.",
	{DNSNXDomain, route.Relay}:  "El nombre del servidor Smtp no existe: ingréselo exactamente como se lo proporciona su proveedor.",

	{NoMailServer, route.Direct}: "El dominio del destinatario no recibe e-mails (no tiene servidor de correo): no es posible entregar a esa dirección.",
	{NoMailServer, route.Relay}:  "El nombre del servidor Smtp no tiene dirección: ingréselo exactamente como se lo proporciona su proveedor.",

	{ConnectTimeout, route.Direct}: "El puerto 25 parece bloqueado: por un firewall, un antivirus, el gateway o su Proveedor de Servicio de Internet. Permítalo, o envíe mediante el servidor Smtp de su proveedor (--route relay).",
	{ConnectTimeout, route.Relay}:  "El servidor Smtp no responde en ese puerto: un firewall, un antivirus o el gateway pueden bloquearlo, o la dirección o el puerto son incorrectos. Compruébelos con su proveedor (a menudo 587 o 465).",

	{ConnectRefused, route.Direct}: "El servidor de e-mail del destinatario rechazó la conexión; puede estar fuera de servicio. mailout intentará con sus otros servidores y volverá a intentarlo más tarde.",
	{ConnectRefused, route.Relay}:  "Nada responde en ese puerto: compruebe con su proveedor el nombre del servidor Smtp y el puerto (a menudo 587 o 465).",

	{NetworkUnreachable, ""}: "Su Pc no tiene ruta hacia ese servidor: compruebe su conexión de red y el gateway.",

	{TLSFailed, route.Direct}: "Falló la conexión segura con el servidor del destinatario. Si falla con todos los dominios, probablemente un antivirus o firewall que inspecciona el correo se interpone: desactive su comprobación de correo saliente.",
	{TLSFailed, route.Relay}:  "Falló la conexión segura con el servidor Smtp: compruebe el puerto y el cifrado que indica su proveedor (587 con STARTTLS o 465 con TLS), y desactive la comprobación de correo saliente de su antivirus, que la intercepta.",

	{AuthRequired, route.Relay}:  "El servidor le pide autenticarse: ingrese el nombre de usuario y la contraseña de su cuenta con ese proveedor.",
	{AuthRequired, route.Direct}: "El servidor Smtp de respaldo (--fallback-relay) le pide autenticarse: ingrese el nombre de usuario y la contraseña de su cuenta con ese proveedor.",

	{AuthFailed, route.Relay}:  "El servidor rechazó su nombre de usuario o contraseña: ingréselos exactamente como se los proporciona su proveedor (algunos exigen una contraseña de aplicación). El envío se detiene para que su cuenta no sea bloqueada.",
	{AuthFailed, route.Direct}: "El servidor Smtp de respaldo (--fallback-relay) rechazó su nombre de usuario o contraseña: ingréselos exactamente como se los proporciona su proveedor (algunos exigen una contraseña de aplicación). El envío se detiene para que su cuenta no sea bloqueada.",

	{RelayDenied, route.Relay}:  "El servidor Smtp está ahí pero no desea hablar con usted: necesita autenticarse con su cuenta, o utilizar el servidor Smtp del proveedor con el que está conectado.",
	{RelayDenied, route.Direct}: "El servidor Smtp de respaldo (--fallback-relay) está ahí pero no desea hablar con usted: necesita autenticarse con su cuenta, o utilizar el servidor Smtp del proveedor con el que está conectado.",

	{SenderRejected, route.Direct}: "El servidor de destino rechaza su dirección de remitente o su IP (a menudo por una lista de bloqueo, o porque esa IP no debe enviar en forma directa): compruebe la dirección From, o envíe mediante el servidor Smtp de su proveedor (--route relay).",
	{SenderRejected, route.Relay}:  "El servidor rechaza su dirección de remitente: utilice una dirección From que su cuenta esté autorizada a usar.",

	{RecipientUnknown, ""}: "El buzón del destinatario no existe; la dirección se agrega a la lista de supresión y no se vuelve a intentar.",

	{MailboxFull, ""}: "El buzón del destinatario está lleno; mailout lo reintentará hasta la antigüedad máxima de la campaña.",

	{Greylisted, ""}: "El servidor de destino pidió volver más tarde (greylisting); mailout lo reintentará por sí mismo, no necesita hacer nada.",

	{Temporary, ""}: "El servidor informó un problema temporal; mailout lo reintentará más tarde por sí mismo.",

	{RateLimited, route.Direct}: "El servidor de destino indica que envía demasiado rápido: mailout reduce la velocidad para ese dominio por sí mismo; si se repite, utilice un perfil de velocidad más lento.",
	{RateLimited, route.Relay}:  "Su proveedor limita la velocidad (o la cantidad diaria) de envío: mailout reduce la velocidad; elija un perfil más lento o consulte los límites con su proveedor.",

	{ContentRejected, ""}: "El servidor rechazó el mensaje como spam o por sus políticas (por ejemplo DMARC, SPF o DKIM): compruebe los registros SPF, DKIM y DMARC de su dominio de envío y el contenido del mensaje.",

	{SenderUnauthenticated, ""}: "Los servidores de destino rechazan su correo porque su dominio de envío no supera sus comprobaciones de autenticación (SPF, DKIM, DMARC o DNS inverso). Compruébelo con mailout doctor --sender SU-DIRECCION-DE-REMITENTE (o la página Diagnóstico), publique o corrija los registros que indique y reanude: los destinatarios siguen pendientes de envío.",

	{ProtocolError, ""}: "La conversación con el servidor se interrumpió (sin respuesta, cierre inesperado o respuesta incorrecta); mailout lo reintentará más tarde. Si ocurre con todos, un antivirus que comprueba el correo saliente puede estar interfiriendo.",

	{ProhibitedDestination, ""}: "El dominio del destinatario apunta a una dirección a la que mailout no envía (este equipo, una red privada o una dirección de metadatos).",

	{RenderFailed, ""}: "No se pudo construir el mensaje para este destinatario: compruebe la plantilla y los campos de este destinatario.",

	{DomainNotHosted, ""}: "El servidor de correo del dominio del destinatario rechaza el correo para ese dominio: su registro MX probablemente está desactualizado o el dominio fue abandonado. Compruebe la dirección con el destinatario; si todos los dominios responden así, ejecute mailout doctor.",

	{CrashLoop, ""}: "mailout se detuvo varias veces mientras enviaba a este destinatario, por lo que se lo abandonó y el resto de la lista siguió; puede haber recibido el mensaje. Actualice mailout o informe el problema, y luego vuelva a enviar con: mailout retry CAMPAÑA --class crash-loop.",

	{Permanent, ""}: "El servidor rechazó el mensaje en forma definitiva; su respuesta indica el motivo.",
}

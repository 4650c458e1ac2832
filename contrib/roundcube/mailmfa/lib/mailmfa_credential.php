<?php

/**
 * mailmfa: the session credential.
 *
 * After the login the session runs on a session credential (an app password made by the
 * panel, limited to the webmail host's address and to IMAP/SMTP), never on the typed
 * password+code. This class owns its whole life: made at login_after, rotated on ready when
 * half of its lifetime is gone, replaced ones revoked after a grace, all revoked when the
 * session ends; plus the IMAP ID x-originating-ip of connections that do not use it
 * (storage_connect) and the local addresses it is limited to.
 *
 * Session keys: mailmfa::CREDENTIAL, mailmfa::RETIRED, mailmfa::LOGIN, mailmfa::RELOGIN
 * (and Roundcube's own 'password').
 *
 * @license MIT (as the mailmfa project)
 */
class mailmfa_credential
{
    /** Seconds a replaced session credential stays valid for requests already running */
    const RETIRE_GRACE = 60;

    /** @var mailmfa */
    private $plugin;

    /** @var rcmail */
    private $rc;

    /** @var mailmfa_panel */
    private $panel;

    /** 'on' / 'off' when this request's login knows the mailbox's MFA state, else null */
    private $mfa_known = null;

    /** The panel's name of the mailbox, from this request's precheck */
    private $precheck_login = null;

    /**
     * @param mailmfa       $plugin The plugin (session keys, forget())
     * @param rcmail        $rc     Roundcube
     * @param mailmfa_panel $panel  The panel's API client
     */
    public function __construct(mailmfa $plugin, rcmail $rc, mailmfa_panel $panel)
    {
        $this->plugin = $plugin;
        $this->rc     = $rc;
        $this->panel  = $panel;
    }

    /**
     * What this request's login step learned, for login_after.
     *
     * @param string|null $login The panel's name of the mailbox (null: not known)
     * @param string|null $mfa   'on' / 'off' when the mailbox's MFA state is known, else null
     */
    public function note_login($login, $mfa)
    {
        $this->precheck_login = $login;
        $this->mfa_known      = $mfa;
    }

    /**
     * login_after: trade the login for a session credential and keep only that in the
     * session. 409 mfa_not_on keeps the typed password. Anything else for a mailbox with
     * (or possibly with) MFA ends the session: fail closed.
     */
    public function login_after($args)
    {
        $this->plugin->forget(mailmfa::PENDING);

        if ($this->precheck_login !== null) {
            $_SESSION[mailmfa::LOGIN] = $this->precheck_login;
        }

        if ($this->mfa_known === 'off') {
            return $args;
        }

        $result = $this->new_credential();

        if ($result === true) {
            return $args;
        }

        if ($result === 'mfa_not_on') {
            return $args;
        }

        // Fail closed: nothing half-done.
        $this->rc->kill_session();
        $this->rc->output->redirect(['_task' => 'login', '_mailmfa' => 'failed'], 0, false);
        exit;
    }

    /**
     * Ask the panel for a session credential and swap it into the session.
     *
     * @return true|string true, or the panel's error string ('mfa_not_on', 'unreachable', ...)
     */
    public function new_credential()
    {
        $login = $this->panel->session_login();
        $from  = $this->credential_from();

        if ($login === '' || empty($from)) {
            rcube::write_log('mailmfa', 'session credential: no ' . ($login === '' ? 'login' : 'local address'));
            return 'invalid_input';
        }

        $res = $this->panel->api('POST', '/api/v1/webmail/credential', [
                'client'   => $this->panel->client_ip(),
                'from'     => $from,
                'services' => array_values((array) $this->rc->config->get('mailmfa_credential_services', ['dovecot', 'imap', 'smtp'])),
                'lifetime' => (string) $this->rc->config->get('mailmfa_credential_lifetime', '1h'),
            ], $login);

        if ($res['status'] == 201 && is_array($res['json'])
            && !empty($res['json']['name']) && !empty($res['json']['password'])
        ) {
            $expires  = intval($res['json']['expires'] ?? 0);
            $lifetime = $this->lifetime_seconds();
            if ($expires <= time()) {
                $expires = time() + $lifetime;
            }

            $_SESSION['password'] = $this->rc->encrypt((string) $res['json']['password']);
            $_SESSION[mailmfa::CREDENTIAL] = [
                'name'     => (string) $res['json']['name'],
                'expires'  => $expires,
                'created'  => time(),
                'lifetime' => max(60, $expires - time()),
            ];

            return true;
        }

        $error = $res['error'] ?: ($res['status'] ? 'http_' . $res['status'] : 'unreachable');
        if ($error !== 'mfa_not_on') {
            $this->panel->log_panel('credential', $res);
        }

        return $error;
    }

    /**
     * ready (every logged-in request, after Roundcube's session and request checks): rotate
     * the session credential when less than half of its lifetime is left; revoke replaced
     * ones after a short grace; end the session when asked to sign in again.
     */
    public function ready($args)
    {
        if (empty($_SESSION['user_id'])) {
            return $args;
        }

        if (!empty($_SESSION[mailmfa::RELOGIN])) {
            $this->end_session('relogin');
        }

        $now = time();

        // Revoke replaced credentials once requests that started with them are done.
        if (!empty($_SESSION[mailmfa::RETIRED])) {
            $keep = [];
            foreach ((array) $_SESSION[mailmfa::RETIRED] as $old) {
                if (intval($old['at'] ?? 0) + self::RETIRE_GRACE <= $now) {
                    $this->revoke_credential($this->panel->session_login(), (string) ($old['name'] ?? ''));
                }
                else {
                    $keep[] = $old;
                }
            }
            if ($keep) {
                $_SESSION[mailmfa::RETIRED] = $keep;
            }
            else {
                $this->plugin->forget(mailmfa::RETIRED);
            }
        }

        $cred = $_SESSION[mailmfa::CREDENTIAL] ?? null;
        if (empty($cred) || !is_array($cred)) {
            return $args;
        }

        $left = intval($cred['expires']) - $now;
        if ($left >= intval($cred['lifetime']) / 2) {
            return $args;
        }

        if (!empty($cred['retry_at']) && $cred['retry_at'] > $now && $left > 0) {
            return $args;
        }

        $old      = $cred;
        $password = $_SESSION['password'];
        $result   = $this->new_credential();

        if ($result === true) {
            $retired   = (array) ($_SESSION[mailmfa::RETIRED] ?? []);
            $retired[] = ['name' => $old['name'], 'at' => $now];
            $_SESSION[mailmfa::RETIRED] = $retired;
            return $args;
        }

        $_SESSION['password'] = $password;

        if ($left <= 0) {
            // The credential is gone and no new one can be made: fail closed.
            $this->end_session('failed');
        }

        $old['retry_at'] = $now + 60;
        $_SESSION[mailmfa::CREDENTIAL] = $old;

        return $args;
    }

    /**
     * On a session that was logged in (session_destroy): revoke its session credential and
     * the replaced ones not revoked yet, and drop them from the session.
     */
    public function revoke_all()
    {
        if (empty($_SESSION[mailmfa::CREDENTIAL]) && empty($_SESSION[mailmfa::RETIRED])) {
            return;
        }

        $login = $this->panel->session_login();
        $names = [];
        if (!empty($_SESSION[mailmfa::CREDENTIAL]['name'])) {
            $names[] = $_SESSION[mailmfa::CREDENTIAL]['name'];
        }
        foreach ((array) ($_SESSION[mailmfa::RETIRED] ?? []) as $old) {
            if (!empty($old['name'])) {
                $names[] = $old['name'];
            }
        }
        foreach ($names as $name) {
            $this->revoke_credential($login, $name);
        }
        $this->plugin->forget(mailmfa::CREDENTIAL, mailmfa::RETIRED);
    }

    /**
     * End the session and send the browser (or the parent of a frame) to the login page.
     */
    private function end_session($flag)
    {
        $this->rc->kill_session();
        $url = $this->rc->url(['_task' => 'login', '_mailmfa' => $flag]);

        if ($this->rc->output->ajax_call || $this->rc->output->get_env('framed')) {
            $this->rc->output->command('redirect', $url);
            $this->rc->output->send($this->rc->output->ajax_call ? null : 'iframe');
            exit;
        }

        $this->rc->output->redirect(['_task' => 'login', '_mailmfa' => $flag]);
        exit;
    }

    /**
     * Revoke one session credential at the panel (a 404 is fine: already gone).
     */
    private function revoke_credential($login, $name)
    {
        if ($login === '' || $name === '') {
            return;
        }

        $res = $this->panel->api('DELETE', '/api/v1/app-passwords/' . rawurlencode($name), null, $login);
        if ($res['status'] != 204 && $res['status'] != 404) {
            $this->panel->log_panel('revoke ' . $name, $res);
        }
    }

    /**
     * storage_connect: a connection that uses the typed string tells Dovecot the browser's
     * address (IMAP ID x-originating-ip; Dovecot honours it from login_trusted_networks).
     * A connection using the session credential does not: the credential works only from
     * the webmail host's address.
     */
    public function storage_connect($args)
    {
        if (!$this->uses_credential($args)) {
            $ip = $this->panel->client_ip();
            if ($ip !== '') {
                $ident = isset($args['preauth_ident']) && is_array($args['preauth_ident']) ? $args['preauth_ident'] : [];
                $ident['x-originating-ip'] = $ip;
                $args['preauth_ident'] = $ident;
            }
        }
        else {
            unset($args['preauth_ident']);
        }

        return $args;
    }

    /**
     * Whether a connection logs in with this session's credential.
     */
    private function uses_credential($args)
    {
        if (empty($_SESSION[mailmfa::CREDENTIAL]) || empty($_SESSION['password'])) {
            return false;
        }

        $pass = $args['pass'] ?? ($args['password'] ?? null);
        if (!is_string($pass) || $pass === '') {
            return false;
        }

        return hash_equals((string) $this->rc->decrypt($_SESSION['password']), $pass);
    }

    /**
     * The addresses the session credential may be used from: the configured list, or the
     * local address this host uses toward the IMAP host (and the SMTP host).
     */
    private function credential_from()
    {
        $conf = $this->rc->config->get('mailmfa_credential_from');
        if (!empty($conf)) {
            $list = [];
            foreach ((array) $conf as $ip) {
                $ip = trim((string) $ip);
                if (filter_var($ip, FILTER_VALIDATE_IP)) {
                    $list[] = $ip;
                }
            }
            return array_slice(array_values(array_unique($list)), 0, 8);
        }

        $targets = [];
        if (!empty($_SESSION['storage_host'])) {
            $targets[] = [$_SESSION['storage_host'], intval($_SESSION['storage_port'] ?? 143) ?: 143];
        }

        $smtp = $this->rc->config->get('smtp_host', 'localhost:587');
        if (is_array($smtp)) {
            $smtp = $smtp[$_SESSION['storage_host'] ?? ''] ?? reset($smtp);
        }
        if (is_string($smtp) && $smtp !== '') {
            $smtp = rcube_utils::parse_host($smtp, $_SESSION['storage_host'] ?? null);
            list($shost, , $sport) = rcube_utils::parse_host_uri($smtp, 587, 465);
            if ($shost) {
                $targets[] = [$shost, intval($sport) ?: 587];
            }
        }

        $list = [];
        foreach ($targets as $t) {
            $ip = $this->local_address($t[0], $t[1]);
            if ($ip !== null) {
                $list[] = $ip;
            }
        }

        return array_slice(array_values(array_unique($list)), 0, 8);
    }

    /**
     * The local address the kernel picks to reach host:port (a UDP "connect" sends nothing).
     */
    private function local_address($host, $port)
    {
        $host = trim((string) $host, '[]');
        if (strpos($host, ':') !== false && filter_var($host, FILTER_VALIDATE_IP, FILTER_FLAG_IPV6)) {
            $target = "udp://[$host]:$port";
        }
        else {
            $target = "udp://$host:$port";
        }

        $errno = 0;
        $errstr = '';
        $sock = @stream_socket_client($target, $errno, $errstr, 2);
        if (!$sock) {
            return null;
        }

        $name = stream_socket_get_name($sock, false);
        fclose($sock);

        if (!is_string($name) || $name === '') {
            return null;
        }

        if (preg_match('/^\[(.+)\]:\d+$/', $name, $m)) {
            $ip = $m[1];
        }
        else {
            $ip = preg_replace('/:\d+$/', '', $name);
        }

        return filter_var($ip, FILTER_VALIDATE_IP) ? $ip : null;
    }

    /**
     * mailmfa_credential_lifetime in seconds (at least 60; 3600 when unreadable).
     */
    private function lifetime_seconds()
    {
        $text = trim((string) $this->rc->config->get('mailmfa_credential_lifetime', '1h'));
        if (preg_match('/^(\d+)\s*([smhd]?)$/i', $text, $m)) {
            $mult = ['' => 1, 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400][strtolower($m[2])];
            return max(60, intval($m[1]) * $mult);
        }

        return 3600;
    }
}

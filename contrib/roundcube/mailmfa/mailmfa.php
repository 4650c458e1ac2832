<?php

/**
 * mailmfa: two-factor sign-in (TOTP) for Roundcube, on top of the mailmfa User Panel's JSON API.
 *
 * - Login in two steps: Roundcube's form, then (only for a mailbox with MFA and a right
 *   password) a code page. The panel's precheck tells the two apart; the code itself is
 *   checked by the mail server (pam_mailmfa) when Roundcube logs in to IMAP with
 *   password+code.
 * - After the login the session runs on a session credential (an app password made by the
 *   panel, limited to the webmail host's address and to IMAP/SMTP, rotated, revoked at
 *   logout), never on the typed password+code.
 * - Settings → Two-factor authentication: status, enable (QR), disable, app passwords,
 *   recovery codes, all through the panel's API with the owner's rules.
 *
 * Secrets (passwords, codes, app passwords, the admin token) are never logged and never put
 * into a URL.
 *
 * @license MIT (as the mailmfa project)
 */
class mailmfa extends rcube_plugin
{
    /** Session keys */
    const PENDING    = 'mailmfa_pending';
    const CREDENTIAL = 'mailmfa_credential';
    const RETIRED    = 'mailmfa_retired';
    const LOGIN      = 'mailmfa_login';
    const ENROL      = 'mailmfa_enrolment';
    const RELOGIN    = 'mailmfa_relogin';

    /** Seconds a replaced session credential stays valid for requests already running */
    const RETIRE_GRACE = 60;

    /** @var rcmail */
    private $rc;

    /** Pending login copied in session_destroy (index.php wipes the session before authenticate) */
    private $pending = null;

    /** The pending login used by this request's code step */
    private $code_attempt = null;

    /** 'on' / 'off' when this request's login knows the mailbox's MFA state, else null */
    private $mfa_known = null;

    /** Roundcube's error code of this request's failed login */
    private $login_error = null;

    /** The panel's name of the mailbox, from this request's precheck */
    private $precheck_login = null;

    /** Messages, values and forms for the settings page */
    private $page = [];

    private $token = null;

    public function init()
    {
        $this->rc = rcmail::get_instance();
        $this->load_config();
        $this->add_texts('localization/', false);

        $this->add_hook('authenticate', [$this, 'authenticate']);
        $this->add_hook('session_destroy', [$this, 'session_destroy']);
        $this->add_hook('unauthenticated', [$this, 'unauthenticated']);
        $this->add_hook('login_after', [$this, 'login_after']);
        $this->add_hook('login_failed', [$this, 'login_failed']);
        $this->add_hook('ready', [$this, 'ready']);
        $this->add_hook('storage_connect', [$this, 'storage_connect']);

        if ($this->rc->task == 'settings' || $this->rc->task == 'login') {
            $this->include_stylesheet($this->local_skin_path() . '/mailmfa.css');
        }

        if ($this->rc->task == 'settings') {
            $this->add_hook('settings_actions', [$this, 'settings_actions']);
            $this->register_action('plugin.mailmfa', [$this, 'action_show']);
            $this->register_action('plugin.mailmfa-enable', [$this, 'action_enable']);
            $this->register_action('plugin.mailmfa-confirm', [$this, 'action_confirm']);
            $this->register_action('plugin.mailmfa-disable', [$this, 'action_disable']);
            $this->register_action('plugin.mailmfa-app-create', [$this, 'action_app_create']);
            $this->register_action('plugin.mailmfa-app-revoke', [$this, 'action_app_revoke']);
            $this->register_action('plugin.mailmfa-recovery', [$this, 'action_recovery']);
        }
    }

    // ------------------------------------------------------------------------------------
    // Login: step one (precheck) and step two (code)
    // ------------------------------------------------------------------------------------

    /**
     * authenticate: step one asks the panel's precheck; for a mailbox with MFA and a right
     * password it keeps a pending login and sends the browser to the code page. Step two
     * (a POST with _mailmfa_code) turns the pending login back into user/host/password+code.
     */
    public function authenticate($args)
    {
        if (isset($_POST['_mailmfa_code'])) {
            return $this->authenticate_code($args);
        }

        if (empty($args['valid']) || !empty($args['abort'])
            || !strlen((string) $args['user']) || !strlen((string) $args['pass'])
        ) {
            return $args;
        }

        $client = $this->client_ip();
        $res = $this->api('POST', '/api/v1/webmail/precheck', [
                'login'    => (string) $args['user'],
                'password' => (string) $args['pass'],
                'client'   => $client,
        ]);

        if ($res['status'] != 200 || !is_array($res['json'])) {
            // 401 (wrong password or password+code typed in one go), 429, 503, unreachable:
            // Roundcube logs in with the typed string as it always did.
            if ($res['status'] != 401) {
                $this->log_panel('precheck', $res);
            }
            return $args;
        }

        $mfa = $res['json']['mfa'] ?? null;
        if (!empty($res['json']['login']) && is_string($res['json']['login'])) {
            $this->precheck_login = $res['json']['login'];
        }

        if ($mfa !== 'on') {
            $this->mfa_known = $mfa === 'off' ? 'off' : null;
            return $args;
        }

        // The password is right and the mailbox has MFA: keep a pending login, ask for the code.
        $_SESSION[self::PENDING] = [
            'user'   => (string) $args['user'],
            'host'   => $args['host'],
            'pass'   => $this->rc->encrypt((string) $args['pass']),
            'login'  => $this->precheck_login,
            'client' => $client,
            'time'   => time(),
            'tries'  => 0,
            'url'    => rcube_utils::get_input_string('_url', rcube_utils::INPUT_POST),
        ];

        // index.php killed the old session (and its cookie) before this hook: give the
        // pending login a fresh session id, as index.php does after a successful login.
        $this->rc->session->regenerate_id(false);
        $this->rc->output->redirect(['_task' => 'login', '_mailmfa' => 'code'], 0, false);
        exit; // redirect() exits; kept for clarity
    }

    /**
     * The code step of authenticate.
     */
    private function authenticate_code($args)
    {
        $pending = $this->pending;

        if (empty($args['valid'])) {
            // Roundcube refuses the request (token, cookies); unauthenticated() counts it.
            return $args;
        }

        if (!$this->pending_usable($pending)) {
            $this->pending = null;
            $args['abort'] = true;
            $args['error'] = $this->gettext(is_array($pending) && intval($pending['tries'] ?? 0) < $this->code_tries()
                ? 'codeexpired' : 'codestartagain');
            return $args;
        }

        $this->code_attempt = $pending;

        $code = self::normalize_code(rcube_utils::get_input_string('_mailmfa_code', rcube_utils::INPUT_POST));
        if (!preg_match('/^([0-9]{4,10}|[A-Za-z]{4}-[A-Za-z]{4}-[A-Za-z]{4})$/', $code)) {
            $args['abort'] = true;
            $args['error'] = $this->gettext('codewrong');
            return $args;
        }

        $password = $this->rc->decrypt($pending['pass']);
        if (!is_string($password) || $password === '') {
            $this->pending = null;
            $this->code_attempt = null;
            $args['abort'] = true;
            $args['error'] = $this->gettext('codeexpired');
            return $args;
        }

        $args['user'] = $pending['user'];
        $args['host'] = $pending['host'];
        $args['pass'] = $password . $code;
        $this->mfa_known = 'on';
        $this->precheck_login = $pending['login'] ?? null;

        if (!empty($pending['url']) && empty($_POST['_url'])) {
            $_POST['_url'] = $pending['url'];
        }

        return $args;
    }

    /**
     * A typed code without spaces; a recovery code typed without its dashes gets them back
     * (the mail server knows recovery codes as abcd-efgh-ijkl).
     */
    private static function normalize_code($code)
    {
        $code = preg_replace('/\s+/', '', (string) $code);
        if (preg_match('/^[A-Za-z]{12}$/', $code)) {
            $code = substr($code, 0, 4) . '-' . substr($code, 4, 4) . '-' . substr($code, 8, 4);
        }

        return $code;
    }

    /**
     * session_destroy: index.php calls kill_session() before authenticate, which wipes
     * $_SESSION; keep the pending login for this request. On a session that was logged in,
     * revoke its session credential(s).
     */
    public function session_destroy($args)
    {
        if (!empty($_SESSION[self::PENDING]) && is_array($_SESSION[self::PENDING])) {
            $this->pending = $_SESSION[self::PENDING];
        }

        if (!empty($_SESSION[self::CREDENTIAL]) || !empty($_SESSION[self::RETIRED])) {
            $login = $this->session_login();
            $names = [];
            if (!empty($_SESSION[self::CREDENTIAL]['name'])) {
                $names[] = $_SESSION[self::CREDENTIAL]['name'];
            }
            foreach ((array) ($_SESSION[self::RETIRED] ?? []) as $old) {
                if (!empty($old['name'])) {
                    $names[] = $old['name'];
                }
            }
            foreach ($names as $name) {
                $this->revoke_credential($login, $name);
            }
            $this->forget(self::CREDENTIAL, self::RETIRED);
        }

        return $args;
    }

    /**
     * unauthenticated: renders the code page while a pending login exists; after a failed
     * code puts the pending login back (at most mailmfa_code_tries, at most
     * mailmfa_code_timeout seconds old); handles Cancel and the plugin's own messages.
     */
    public function unauthenticated($args)
    {
        $flag = rcube_utils::get_input_string('_mailmfa', rcube_utils::INPUT_GET);

        // A submitted code that did not log in (wrong code, refused request).
        if (isset($_POST['_mailmfa_code'])) {
            $pending = $this->code_attempt ?: ($this->pending ?: ($_SESSION[self::PENDING] ?? null));
            $this->forget(self::PENDING);

            // Roundcube's own lock (login_rate_limit) refused the login before the code
            // was tried: the code does not count; Roundcube's message stays.
            $locked = $this->login_error === rcmail::ERROR_RATE_LIMIT;

            if (is_array($pending) && !$locked) {
                $pending['tries'] = intval($pending['tries'] ?? 0) + 1;
            }

            if ($this->pending_usable($pending)) {
                $_SESSION[self::PENDING] = $pending;
                $this->rc->session->regenerate_id(false);
                if (!$locked) {
                    $left = $this->code_tries() - $pending['tries'];
                    $this->rc->output->show_message($this->gettext([
                            'name' => 'codewrongleft',
                            'vars' => ['n' => $left],
                        ]), 'warning');
                }
                $args['http_code'] = 401;
                $this->send_code_page($pending, $args['http_code']);
            }

            if (is_array($pending)) {
                $this->rc->output->show_message($this->gettext('codestartagain'), 'warning');
            }

            return $args;
        }

        if ($flag === 'cancel') {
            $this->forget(self::PENDING);
            return $args;
        }

        if ($flag === 'failed') {
            $this->rc->output->show_message($this->gettext('credentialfailed'), 'error');
        }
        else if ($flag === 'relogin') {
            $this->rc->output->show_message($this->gettext('signinagain'), 'notice');
        }

        if (!empty($_SESSION[self::PENDING])) {
            $pending = $_SESSION[self::PENDING];
            if ($this->pending_usable($pending)) {
                $this->send_code_page($pending, 200);
            }

            $this->forget(self::PENDING);
            $this->rc->output->show_message($this->gettext('codestartagain'), 'warning');
        }

        return $args;
    }

    /**
     * Remove session keys for good: Roundcube's session writer merges the stored variables
     * with the new ones, so a plain unset() would not reach the store.
     */
    private function forget(...$keys)
    {
        foreach ($keys as $key) {
            if (array_key_exists($key, $_SESSION)) {
                $this->rc->session->remove($key);
            }
            unset($_SESSION[$key]);
        }
    }

    /**
     * login_failed: remember Roundcube's reason for unauthenticated().
     */
    public function login_failed($args)
    {
        $this->login_error = isset($args['code']) ? intval($args['code']) : null;
        return $args;
    }

    /**
     * A pending login is usable while it is young enough and has tries left.
     */
    private function pending_usable($pending)
    {
        return is_array($pending)
            && !empty($pending['pass'])
            && isset($pending['user'])
            && intval($pending['tries'] ?? 0) < $this->code_tries()
            && time() - intval($pending['time'] ?? 0) <= $this->code_timeout();
    }

    private function code_tries()
    {
        return max(1, intval($this->rc->config->get('mailmfa_code_tries', 3)));
    }

    private function code_timeout()
    {
        return max(30, intval($this->rc->config->get('mailmfa_code_timeout', 300)));
    }

    /**
     * Render the code page (exits).
     */
    private function send_code_page($pending, $http_code)
    {
        $this->code_page_pending = $pending;
        $this->register_handler('plugin.mailmfa_codeform', [$this, 'code_form']);
        $this->rc->output->set_pagetitle($this->gettext('codetitle'));
        $this->rc->output->set_env('task', 'login');

        if ($http_code == 401) {
            header('HTTP/1.0 401 Unauthorized');
        }

        $this->rc->output->send('mailmfa.code');
        exit;
    }

    private $code_page_pending = null;

    /**
     * Template object plugin.mailmfa_codeform: the code form, shaped like Roundcube's login
     * form (the template wraps it in #login-form, whose table rows the elastic skin styles).
     */
    public function code_form($attrib)
    {
        $pending = $this->code_page_pending ?: [];
        $digits  = 6;

        $hidden = html::tag('input', ['type' => 'hidden', 'name' => '_task', 'value' => 'login'])
            . html::tag('input', ['type' => 'hidden', 'name' => '_action', 'value' => 'login'])
            . html::tag('input', ['type' => 'hidden', 'name' => '_timezone', 'id' => 'rcmlogintz', 'value' => '_default_'])
            . html::tag('input', ['type' => 'hidden', 'name' => '_url', 'id' => 'rcmloginurl', 'value' => (string) ($pending['url'] ?? '')]);

        $input = html::tag('input', [
                'type'           => 'text',
                'name'           => '_mailmfa_code',
                'id'             => 'mailmfa-code',
                'autocomplete'   => 'one-time-code',
                'inputmode'      => 'numeric',
                'autocapitalize' => 'off',
                'spellcheck'     => 'false',
                // 6-8 digits, with spaces from a paste, or a recovery code abcd-efgh-ijkl
                'maxlength'      => 20,
                'size'           => 20,
                'required'       => 'required',
                'autofocus'      => 'autofocus',
                'class'          => 'form-control',
                'data-icon'      => 'pass',
                'aria-describedby' => 'mailmfa-code-hint',
        ]);

        $table = new html_table(['cols' => 2]);
        $table->add('title', html::label('mailmfa-code', rcube::Q($this->gettext('codelabel'))));
        $table->add('input', $input);

        $who = isset($pending['user']) ? (string) $pending['user'] : '';

        $intro = html::p(['id' => 'mailmfa-code-hint', 'class' => 'mailmfa-code-hint'],
            rcube::Q($this->gettext(['name' => 'codeprompt', 'vars' => ['n' => $digits]])));
        if ($who !== '') {
            $intro = html::p(['class' => 'mailmfa-code-user'], html::tag('strong', null, rcube::Q($who))) . $intro;
        }

        $submit = html::tag('button', [
                'type'  => 'submit',
                'id'    => 'mailmfa-code-submit',
                'class' => 'button mainaction submit btn btn-primary btn-lg text-uppercase w-100',
            ], rcube::Q($this->gettext('codesubmit')));

        $cancel = html::a([
                'href'  => './?_task=login&_mailmfa=cancel',
                'id'    => 'mailmfa-code-cancel',
                'class' => 'mailmfa-code-cancel',
            ], rcube::Q($this->gettext('cancel')));

        $form = html::tag('form', [
                'id'     => 'mailmfa-code-form',
                'name'   => 'mailmfa-code-form',
                'method' => 'post',
                'action' => './?_task=login',
                'class'  => 'propform',
            ],
            $hidden . $intro . $table->show()
            . html::p('formbuttons', $submit)
            . html::p(['class' => 'mailmfa-code-alt'], rcube::Q($this->gettext('coderecovery')))
            . html::p(['class' => 'mailmfa-code-links'], $cancel)
        );

        return $form;
    }

    // ------------------------------------------------------------------------------------
    // Session credential
    // ------------------------------------------------------------------------------------

    /**
     * login_after: trade the login for a session credential and keep only that in the
     * session. 409 mfa_not_on keeps the typed password. Anything else for a mailbox with
     * (or possibly with) MFA ends the session: fail closed.
     */
    public function login_after($args)
    {
        $this->forget(self::PENDING);

        if ($this->precheck_login !== null) {
            $_SESSION[self::LOGIN] = $this->precheck_login;
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
    private function new_credential()
    {
        $login = $this->session_login();
        $from  = $this->credential_from();

        if ($login === '' || empty($from)) {
            rcube::write_log('mailmfa', 'session credential: no ' . ($login === '' ? 'login' : 'local address'));
            return 'invalid_input';
        }

        $res = $this->api('POST', '/api/v1/webmail/credential', [
                'client'   => $this->client_ip(),
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
            $_SESSION[self::CREDENTIAL] = [
                'name'     => (string) $res['json']['name'],
                'expires'  => $expires,
                'created'  => time(),
                'lifetime' => max(60, $expires - time()),
            ];

            return true;
        }

        $error = $res['error'] ?: ($res['status'] ? 'http_' . $res['status'] : 'unreachable');
        if ($error !== 'mfa_not_on') {
            $this->log_panel('credential', $res);
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

        if (!empty($_SESSION[self::RELOGIN])) {
            $this->end_session('relogin');
        }

        $now = time();

        // Revoke replaced credentials once requests that started with them are done.
        if (!empty($_SESSION[self::RETIRED])) {
            $keep = [];
            foreach ((array) $_SESSION[self::RETIRED] as $old) {
                if (intval($old['at'] ?? 0) + self::RETIRE_GRACE <= $now) {
                    $this->revoke_credential($this->session_login(), (string) ($old['name'] ?? ''));
                }
                else {
                    $keep[] = $old;
                }
            }
            if ($keep) {
                $_SESSION[self::RETIRED] = $keep;
            }
            else {
                $this->forget(self::RETIRED);
            }
        }

        $cred = $_SESSION[self::CREDENTIAL] ?? null;
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
            $retired   = (array) ($_SESSION[self::RETIRED] ?? []);
            $retired[] = ['name' => $old['name'], 'at' => $now];
            $_SESSION[self::RETIRED] = $retired;
            return $args;
        }

        $_SESSION['password'] = $password;

        if ($left <= 0) {
            // The credential is gone and no new one can be made: fail closed.
            $this->end_session('failed');
        }

        $old['retry_at'] = $now + 60;
        $_SESSION[self::CREDENTIAL] = $old;

        return $args;
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

    private function revoke_credential($login, $name)
    {
        if ($login === '' || $name === '') {
            return;
        }

        $res = $this->api('DELETE', '/api/v1/app-passwords/' . rawurlencode($name), null, $login);
        if ($res['status'] != 204 && $res['status'] != 404) {
            $this->log_panel('revoke ' . $name, $res);
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
            $ip = $this->client_ip();
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

    private function uses_credential($args)
    {
        if (empty($_SESSION[self::CREDENTIAL]) || empty($_SESSION['password'])) {
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

    private function lifetime_seconds()
    {
        $text = trim((string) $this->rc->config->get('mailmfa_credential_lifetime', '1h'));
        if (preg_match('/^(\d+)\s*([smhd]?)$/i', $text, $m)) {
            $mult = ['' => 1, 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400][strtolower($m[2])];
            return max(60, intval($m[1]) * $mult);
        }

        return 3600;
    }

    // ------------------------------------------------------------------------------------
    // Settings → Two-factor authentication
    // ------------------------------------------------------------------------------------

    public function settings_actions($args)
    {
        $args['actions'][] = [
            'action' => 'plugin.mailmfa',
            'class'  => 'mailmfa',
            'label'  => 'sectiontitle',
            'title'  => 'sectiontitle',
            'domain' => 'mailmfa',
        ];

        return $args;
    }

    /** GET: the settings page. */
    public function action_show()
    {
        $this->send_settings();
    }

    /** POST: begin the enrolment (new key, QR). */
    public function action_enable()
    {
        $this->check_post();

        $res = $this->owner_api('POST', '/api/v1/mfa/enrolment', new stdClass());
        if ($res['status'] == 201 && is_array($res['json']) && !empty($res['json']['svg'])) {
            $this->store_enrolment($res['json']);
        }
        else {
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /** POST: confirm the enrolment with a code; MFA is on when it is right. */
    public function action_confirm()
    {
        $this->check_post();

        $code = $this->posted_code('_mailmfa_confirm_code');
        if ($code === '') {
            $this->page['error'] = $this->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->owner_api('POST', '/api/v1/mfa/enrolment/confirm', ['code' => $code]);
        if ($res['status'] == 200) {
            $this->forget(self::ENROL);
            $this->page['notice'] = $this->gettext('enabled');

            // The typed password alone no longer opens the mailbox: move this session onto
            // a session credential right away.
            if (empty($_SESSION[self::CREDENTIAL])) {
                if ($this->new_credential() !== true) {
                    $_SESSION[self::RELOGIN] = true;
                    $this->page['notice'] = $this->gettext('enabledrelogin');
                }
            }
        }
        else {
            if (in_array($res['error'], ['enrolment_expired', 'enrolment_cancelled', 'no_enrolment'])) {
                $this->forget(self::ENROL);
            }
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /** POST: turn MFA off with a current code or a recovery code. */
    public function action_disable()
    {
        $this->check_post();

        $code = $this->posted_code('_mailmfa_disable_code');
        if ($code === '') {
            $this->page['error'] = $this->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->owner_api('POST', '/api/v1/mfa/disable', ['code' => $code]);
        if ($res['status'] == 200) {
            $this->page['notice'] = $this->gettext('disabled');

            // The record and its app passwords (this session's credential too) are gone:
            // the session must be signed in again with the password alone.
            if (!empty($_SESSION[self::CREDENTIAL])) {
                $this->forget(self::CREDENTIAL, self::RETIRED);
                $_SESSION[self::RELOGIN] = true;
                $this->page['notice'] = $this->gettext('disabledrelogin');
            }
        }
        else {
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /** POST: make an app password (shown once). */
    public function action_app_create()
    {
        $this->check_post();

        $label = trim((string) rcube_utils::get_input_string('_mailmfa_app_label', rcube_utils::INPUT_POST));
        $code  = $this->posted_code('_mailmfa_app_code');

        if ($label === '') {
            $this->page['error'] = $this->gettext('enterlabel');
            $this->send_settings();
        }
        if ($code === '') {
            $this->page['error'] = $this->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->owner_api('POST', '/api/v1/app-passwords', ['label' => $label, 'code' => $code]);
        if ($res['status'] == 201 && is_array($res['json']) && !empty($res['json']['password'])) {
            $this->page['new_password'] = [
                'name'     => (string) ($res['json']['name'] ?? $label),
                'password' => (string) $res['json']['password'],
            ];
            $this->page['notice'] = $this->gettext('appcreated');
        }
        else {
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /** POST: revoke an app password. */
    public function action_app_revoke()
    {
        $this->check_post();

        $name = trim((string) rcube_utils::get_input_string('_mailmfa_app_name', rcube_utils::INPUT_POST));
        $own  = $_SESSION[self::CREDENTIAL]['name'] ?? null;

        if ($name === '' || $name === $own) {
            $this->page['error'] = $this->gettext('appnotfound');
            $this->send_settings();
        }

        $res = $this->owner_api('DELETE', '/api/v1/app-passwords/' . rawurlencode($name));
        if ($res['status'] == 204 || $res['status'] == 200) {
            $this->page['notice'] = $this->gettext(['name' => 'apprevoked', 'vars' => ['name' => $name]]);
        }
        else {
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /** POST: a new set of recovery codes (shown once). */
    public function action_recovery()
    {
        $this->check_post();

        $code = $this->posted_code('_mailmfa_recovery_code');
        if ($code === '') {
            $this->page['error'] = $this->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->owner_api('POST', '/api/v1/recovery-codes', ['code' => $code]);
        if ($res['status'] == 201 && is_array($res['json']) && !empty($res['json']['codes'])) {
            $this->page['recovery_codes'] = array_map('strval', (array) $res['json']['codes']);
            $this->page['notice'] = $this->gettext('recoverycreated');
        }
        else {
            $this->api_error($res);
        }

        $this->send_settings();
    }

    /**
     * Roundcube's action handler already refuses a POST without the right _token; check it
     * here too, and refuse anything that is not a POST.
     */
    private function check_post()
    {
        if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'POST' || !$this->rc->check_request(rcube_utils::INPUT_POST)) {
            rcube::raise_error(['code' => 403, 'message' => 'Request security check failed'], false, true);
        }
    }

    private function posted_code($field)
    {
        return self::normalize_code(rcube_utils::get_input_string($field, rcube_utils::INPUT_POST));
    }

    private function api_error($res)
    {
        if (!empty($res['message'])) {
            $this->page['error'] = $res['message'];
        }
        else if ($res['status'] == 0) {
            $this->page['error'] = $this->gettext('panelunreachable');
        }
        else {
            $this->page['error'] = $this->gettext('panelerror');
        }

        if ($res['status'] == 0 || $res['status'] >= 500) {
            $this->log_panel('settings', $res);
        }
    }

    private function store_enrolment($json)
    {
        $data = json_encode([
                'svg'     => (string) $json['svg'],
                'key'     => (string) ($json['key'] ?? ''),
                'expires' => intval($json['expires'] ?? 0),
        ]);
        // The key is a secret: keep it encrypted like Roundcube keeps the password.
        $_SESSION[self::ENROL] = $this->rc->encrypt($data);
    }

    private function load_enrolment()
    {
        if (empty($_SESSION[self::ENROL])) {
            return null;
        }

        $data = json_decode((string) $this->rc->decrypt($_SESSION[self::ENROL]), true);
        if (!is_array($data) || empty($data['svg'])
            || (!empty($data['expires']) && $data['expires'] < time())
        ) {
            $this->forget(self::ENROL);
            return null;
        }

        return $data;
    }

    private function send_settings()
    {
        $this->register_handler('plugin.mailmfa_settings', [$this, 'settings_html']);
        $this->include_script('mailmfa.js');
        $this->rc->output->set_pagetitle($this->gettext('sectiontitle'));

        if (!empty($this->page['error'])) {
            $this->rc->output->show_message($this->page['error'], 'error');
        }
        else if (!empty($this->page['notice'])) {
            $this->rc->output->show_message($this->page['notice'], 'confirmation');
        }

        $this->rc->output->send('mailmfa.settings');
        exit;
    }

    /**
     * Template object plugin.mailmfa_settings: the whole settings content.
     */
    public function settings_html($attrib)
    {
        $status = $this->owner_api('GET', '/api/v1/mfa');
        $out    = '';

        // Message line (also shown as Roundcube's pop-up message).
        $msg = '';
        if (!empty($this->page['error'])) {
            $msg = html::div(['id' => 'mailmfa-message', 'class' => 'boxerror mailmfa-message', 'role' => 'alert'],
                rcube::Q($this->page['error']));
        }
        else if (!empty($this->page['notice'])) {
            $msg = html::div(['id' => 'mailmfa-message', 'class' => 'boxconfirmation mailmfa-message', 'role' => 'status'],
                rcube::Q($this->page['notice']));
        }
        else {
            $msg = html::div(['id' => 'mailmfa-message', 'class' => 'mailmfa-message', 'role' => 'status'], '');
        }

        if ($status['status'] != 200 || !is_array($status['json'])) {
            $this->log_panel('status', $status);
            $text = $status['message'] ?: $this->gettext('panelunreachable');
            return $msg . html::div(['id' => 'mailmfa-status', 'class' => 'boxwarning'], rcube::Q($text));
        }

        $on = ($status['json']['mfa'] ?? 'off') === 'on';
        $digits = intval($status['json']['digits'] ?? 6) ?: 6;

        $out .= $msg;
        $out .= html::p(['id' => 'mailmfa-status', 'class' => 'mailmfa-status ' . ($on ? 'mailmfa-on' : 'mailmfa-off')],
            rcube::Q($this->gettext($on ? 'statuson' : 'statusoff')));

        if (!$on) {
            $out .= $this->section_enable($digits);
        }
        else {
            $out .= html::p(['class' => 'mailmfa-status-actions'], $this->disable_button());
            $out .= $this->section_app_passwords($status['json']);
            $out .= $this->section_recovery($status['json']);
            $out .= $this->section_disable();
        }

        return html::div(['id' => 'mailmfa-settings', 'class' => 'mailmfa-settings'], $out);
    }

    private function section_enable($digits)
    {
        $enrol = $this->load_enrolment();

        if (!$enrol) {
            $form = $this->post_form('plugin.mailmfa-enable', 'mailmfa-enable-form',
                html::p(null, rcube::Q($this->gettext('enableintro')))
                . html::p('formbuttons', $this->button('mailmfa-enable', $this->gettext('enable'))));

            return $this->fieldset($this->gettext('enabletitle'), $form);
        }

        $img = html::img([
                'id'     => 'mailmfa-qr',
                'src'    => 'data:image/svg+xml;base64,' . base64_encode($enrol['svg']),
                'alt'    => $this->gettext('qralt'),
                'width'  => 240,
                'height' => 240,
                'class'  => 'mailmfa-qr',
        ]);

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-confirm-code', rcube::Q($this->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_confirm_code', 'mailmfa-confirm-code'));

        $form = $this->post_form('plugin.mailmfa-confirm', 'mailmfa-confirm-form',
            html::p(null, rcube::Q($this->gettext('scanintro')))
            . html::div(['class' => 'mailmfa-qr-box'], $img)
            . html::p(null, rcube::Q($this->gettext('keyintro')) . ' '
                . html::tag('code', ['id' => 'mailmfa-key', 'class' => 'mailmfa-key'], rcube::Q($enrol['key'])))
            . html::p(null, rcube::Q($this->gettext(['name' => 'confirmintro', 'vars' => ['n' => $digits]])))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-verify', $this->gettext('verify'))));

        return $this->fieldset($this->gettext('enabletitle'), $form);
    }

    private function section_disable()
    {
        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-disable-code', rcube::Q($this->gettext('codeorrecovery'))));
        $table->add(null, $this->code_input('_mailmfa_disable_code', 'mailmfa-disable-code', 20));

        $form = $this->post_form('plugin.mailmfa-disable', 'mailmfa-disable-form',
            html::p(null, rcube::Q($this->gettext('disableintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-disable-submit', $this->gettext('disablesubmit'), 'btn btn-danger')));

        return html::tag('fieldset', ['id' => 'mailmfa-disable-section', 'class' => 'mailmfa-section'],
            html::tag('legend', null, rcube::Q($this->gettext('disabletitle'))) . $form);
    }

    /**
     * "Disable MFA" next to the status: takes the owner to the disable form (mailmfa.js
     * focuses its code field; without script it is a plain link to it).
     */
    private function disable_button()
    {
        return html::a([
                'href'  => '#mailmfa-disable-section',
                'id'    => 'mailmfa-disable',
                'class' => 'button btn btn-secondary mailmfa-disable',
                'role'  => 'button',
            ], rcube::Q($this->gettext('disable')));
    }

    private function section_app_passwords($status)
    {
        $out = '';

        if (!empty($this->page['new_password'])) {
            $np = $this->page['new_password'];
            $out .= html::div(['class' => 'boxinformation mailmfa-new-password-box'],
                html::p(null, rcube::Q($this->gettext(['name' => 'appshownonce', 'vars' => ['name' => $np['name']]])))
                . html::p(null, html::tag('code', ['id' => 'mailmfa-new-password', 'class' => 'mailmfa-secret'], rcube::Q($np['password']))));
        }

        $list = $this->owner_api('GET', '/api/v1/app-passwords');
        $items = [];
        if ($list['status'] == 200 && is_array($list['json'])) {
            foreach ((array) ($list['json']['app_passwords'] ?? []) as $item) {
                if (!is_array($item) || !empty($item['webmail'])) {
                    continue; // session credentials of webmail sessions are not app passwords
                }
                $items[] = $item;
            }
        }

        if ($items) {
            $table = new html_table(['cols' => 4, 'class' => 'records-table mailmfa-app-table', 'id' => 'mailmfa-app-list']);
            $table->add_header(null, rcube::Q($this->gettext('appname')));
            $table->add_header(null, rcube::Q($this->gettext('appcreated_col')));
            $table->add_header(null, rcube::Q($this->gettext('applastused')));
            $table->add_header(null, '');

            foreach ($items as $item) {
                $name = (string) ($item['name'] ?? '');
                $table->add_row(['class' => 'mailmfa-app-row', 'data-name' => $name]);
                $table->add('name', rcube::Q($name));
                $table->add('created', rcube::Q($this->date($item['created'] ?? null)));
                $used = $this->date($item['last_used'] ?? null);
                if ($used !== '' && !empty($item['last_client'])) {
                    $used .= ' (' . $item['last_client'] . ')';
                }
                $table->add('lastused', rcube::Q($used !== '' ? $used : $this->gettext('never')));
                $table->add('action', $this->post_form('plugin.mailmfa-app-revoke', null,
                    html::tag('input', ['type' => 'hidden', 'name' => '_mailmfa_app_name', 'value' => $name])
                    . html::tag('button', [
                            'type'  => 'submit',
                            'class' => 'btn btn-secondary btn-sm mailmfa-app-revoke',
                            'title' => $this->gettext(['name' => 'revoketitle', 'vars' => ['name' => $name]]),
                        ], rcube::Q($this->gettext('revoke'))),
                    ['class' => 'mailmfa-inline-form']));
            }

            $out .= $table->show();
        }
        else {
            $out .= html::p(['class' => 'mailmfa-app-none'], rcube::Q($this->gettext('appnone')));
        }

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-app-label', rcube::Q($this->gettext('applabel'))));
        $table->add(null, html::tag('input', [
                'type'         => 'text',
                'name'         => '_mailmfa_app_label',
                'id'           => 'mailmfa-app-label',
                'maxlength'    => 64,
                'autocomplete' => 'off',
                'class'        => 'form-control',
                'placeholder'  => $this->gettext('applabelhint'),
        ]));
        $table->add('title', html::label('mailmfa-app-code', rcube::Q($this->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_app_code', 'mailmfa-app-code'));

        $out .= $this->post_form('plugin.mailmfa-app-create', 'mailmfa-app-form',
            html::p(null, rcube::Q($this->gettext('appintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-app-create', $this->gettext('appcreate'))));

        return $this->fieldset($this->gettext('apptitle'), $out);
    }

    private function section_recovery($status)
    {
        $out = '';

        if (!empty($this->page['recovery_codes'])) {
            $items = '';
            foreach ($this->page['recovery_codes'] as $c) {
                $items .= html::tag('li', null, html::tag('code', null, rcube::Q($c)));
            }
            $out .= html::div(['class' => 'boxinformation'],
                html::p(null, rcube::Q($this->gettext('recoveryshownonce')))
                . html::tag('ul', ['id' => 'mailmfa-recovery-codes', 'class' => 'mailmfa-secret mailmfa-recovery-list'], $items));
        }

        $left = intval($status['recovery_codes_left'] ?? 0);
        $out .= html::p(['id' => 'mailmfa-recovery-left'],
            rcube::Q($this->gettext(['name' => 'recoveryleft', 'vars' => ['n' => $left]])));

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-recovery-code', rcube::Q($this->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_recovery_code', 'mailmfa-recovery-code'));

        $out .= $this->post_form('plugin.mailmfa-recovery', 'mailmfa-recovery-form',
            html::p(null, rcube::Q($this->gettext('recoveryintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-recovery-create', $this->gettext('recoverycreate'))));

        return $this->fieldset($this->gettext('recoverytitle'), $out);
    }

    private function fieldset($legend, $content)
    {
        return html::tag('fieldset', ['class' => 'mailmfa-section'],
            html::tag('legend', null, rcube::Q($legend)) . $content);
    }

    /**
     * A POST form to one of the plugin's actions. Roundcube adds _token (and _framed) to it.
     */
    private function post_form($action, $id, $content, $attrib = [])
    {
        $attrib += [
            'method' => 'post',
            'action' => './?_task=settings&_action=' . $action,
        ];
        if ($id) {
            $attrib['id'] = $id;
        }

        return $this->rc->output->form_tag($attrib, $content);
    }

    private function button($id, $label, $class = 'btn btn-primary')
    {
        return html::tag('button', ['type' => 'submit', 'id' => $id, 'class' => 'button mainaction ' . $class],
            rcube::Q($label));
    }

    private function code_input($name, $id, $maxlength = 12)
    {
        return html::tag('input', [
                'type'           => 'text',
                'name'           => $name,
                'id'             => $id,
                'autocomplete'   => 'one-time-code',
                'inputmode'      => $maxlength > 12 ? 'text' : 'numeric',
                'autocapitalize' => 'off',
                'spellcheck'     => 'false',
                'maxlength'      => $maxlength,
                'size'           => 14,
                'class'          => 'form-control mailmfa-code-input',
        ]);
    }

    private function date($ts)
    {
        if (empty($ts) || !is_numeric($ts)) {
            return '';
        }

        return $this->rc->format_date(intval($ts));
    }

    // ------------------------------------------------------------------------------------
    // The panel's API
    // ------------------------------------------------------------------------------------

    /**
     * A call with the owner's rules: admin token + the logged-in mailbox + the browser.
     */
    private function owner_api($method, $path, $body = null)
    {
        $login = $this->session_login();
        if ($login === '') {
            return ['status' => 401, 'json' => null, 'error' => 'unauthenticated', 'message' => ''];
        }

        return $this->api($method, $path, $body, $login, true);
    }

    /**
     * The logged-in mailbox as the panel knows it (the precheck's answer, else Roundcube's
     * user name).
     */
    private function session_login()
    {
        $login = $_SESSION[self::LOGIN] ?? null;
        if (!is_string($login) || $login === '') {
            $login = (string) $this->rc->get_user_name();
        }

        return $login;
    }

    /**
     * The browser's address (Roundcube's remote_addr(): REMOTE_ADDR, or the forwarded
     * address when REMOTE_ADDR is in proxy_whitelist).
     */
    private function client_ip()
    {
        $ip = trim((string) rcube_utils::remote_addr());
        return filter_var($ip, FILTER_VALIDATE_IP) ? $ip : '';
    }

    private function admin_token()
    {
        if ($this->token === null) {
            $file = (string) $this->rc->config->get('mailmfa_admin_token_file', '/etc/roundcube/mailmfa-panel.token');
            $text = is_readable($file) ? @file_get_contents($file) : false;
            $this->token = $text === false ? '' : trim($text);
            if ($this->token === '') {
                rcube::write_log('mailmfa', "cannot read the panel's admin token from $file");
            }
        }

        return $this->token;
    }

    /**
     * One HTTP call to the panel. Returns status (0 = unreachable), decoded JSON, and the
     * API's error/message strings.
     */
    private function api($method, $path, $body = null, $login = null, $owner = false)
    {
        $result = ['status' => 0, 'json' => null, 'error' => '', 'message' => ''];

        $base  = rtrim((string) $this->rc->config->get('mailmfa_panel_url', 'http://127.0.0.1:8470'), '/');
        $token = $this->admin_token();
        if ($token === '' || $base === '') {
            $result['error'] = 'not_configured';
            return $result;
        }

        $clean = function ($v) {
            return preg_replace('/[\x00-\x1f\x7f]/', '', (string) $v);
        };

        $headers = [
            'Authorization: Bearer ' . $clean($token),
            'Accept: application/json',
            'Connection: close',
            'User-Agent: roundcube-mailmfa',
        ];
        if ($login !== null) {
            $headers[] = 'X-Mailmfa-Login: ' . $clean($login);
        }
        if ($owner) {
            $headers[] = 'X-Mailmfa-Owner-Client: ' . $clean($this->client_ip());
        }

        $timeout = max(1, intval($this->rc->config->get('mailmfa_timeout', 5)));
        $http = [
            'method'          => $method,
            'timeout'         => $timeout,
            'ignore_errors'   => true,
            'follow_location' => 0,
            'max_redirects'   => 1,
            'protocol_version' => 1.1,
        ];

        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
            $http['content'] = json_encode($body);
        }
        else if ($method === 'POST' || $method === 'DELETE') {
            $headers[] = 'Content-Length: 0';
        }

        $http['header'] = implode("\r\n", $headers);

        $context = stream_context_create(['http' => $http]);

        $old = ini_get('default_socket_timeout');
        ini_set('default_socket_timeout', (string) $timeout);
        $http_response_header = null;
        $text = @file_get_contents($base . $path, false, $context);
        ini_set('default_socket_timeout', (string) $old);

        $status = 0;
        if (is_array($http_response_header)) {
            // The last status line wins (a 100 Continue may come first).
            foreach ($http_response_header as $line) {
                if (preg_match('#^HTTP/\S+\s+(\d{3})#', $line, $m)) {
                    $status = intval($m[1]);
                }
            }
        }

        $result['status'] = $status;
        if ($status && is_string($text) && $text !== '') {
            $json = json_decode($text, true);
            if (is_array($json)) {
                $result['json'] = $json;
                if ($status >= 300) {
                    $result['error']   = is_string($json['error'] ?? null) ? $json['error'] : '';
                    $result['message'] = is_string($json['message'] ?? null) ? $json['message'] : '';
                }
            }
        }

        return $result;
    }

    /**
     * Log a failed panel call: the call's name, status and error code only (never a body).
     */
    private function log_panel($what, $res)
    {
        rcube::write_log('mailmfa', sprintf('panel %s: %s %s',
            $what,
            $res['status'] ? 'HTTP ' . $res['status'] : 'unreachable',
            $res['error'] !== '' ? $res['error'] : ''));
    }
}

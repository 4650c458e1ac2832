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
 * This file: the plugin's entry point (hooks, actions, session keys) and the two-step login
 * (precheck, pending login, code page). The rest lives in lib/:
 * - lib/mailmfa_panel.php      the panel's API client
 * - lib/mailmfa_credential.php the session credential
 * - lib/mailmfa_settings.php   the Settings → Two-factor authentication page
 *
 * @license MIT (as the mailmfa project)
 */

require_once __DIR__ . '/lib/mailmfa_panel.php';
require_once __DIR__ . '/lib/mailmfa_credential.php';
require_once __DIR__ . '/lib/mailmfa_settings.php';

class mailmfa extends rcube_plugin
{
    /** Session keys */
    const PENDING    = 'mailmfa_pending';
    const CREDENTIAL = 'mailmfa_credential';
    const RETIRED    = 'mailmfa_retired';
    const LOGIN      = 'mailmfa_login';
    const ENROL      = 'mailmfa_enrolment';
    const RELOGIN    = 'mailmfa_relogin';

    /** @var rcmail */
    private $rc;

    /** @var mailmfa_panel The panel's API client */
    private $panel;

    /** @var mailmfa_credential The session credential */
    private $credential;

    /** @var mailmfa_settings|null The settings page (settings task only) */
    private $settings = null;

    /** Pending login copied in session_destroy (index.php wipes the session before authenticate) */
    private $pending = null;

    /** The pending login used by this request's code step */
    private $code_attempt = null;

    /** Roundcube's error code of this request's failed login */
    private $login_error = null;

    /** The pending login shown by this request's code page */
    private $code_page_pending = null;

    /**
     * Loads the config and texts, makes the helpers and registers the hooks and actions.
     */
    public function init()
    {
        $this->rc = rcmail::get_instance();
        $this->load_config();
        $this->add_texts('localization/', false);

        $this->panel      = new mailmfa_panel($this->rc);
        $this->credential = new mailmfa_credential($this, $this->rc, $this->panel);

        $this->add_hook('authenticate', [$this, 'authenticate']);
        $this->add_hook('session_destroy', [$this, 'session_destroy']);
        $this->add_hook('unauthenticated', [$this, 'unauthenticated']);
        $this->add_hook('login_after', [$this->credential, 'login_after']);
        $this->add_hook('login_failed', [$this, 'login_failed']);
        $this->add_hook('ready', [$this->credential, 'ready']);
        $this->add_hook('storage_connect', [$this->credential, 'storage_connect']);

        if ($this->rc->task == 'settings' || $this->rc->task == 'login') {
            $this->include_stylesheet($this->local_skin_path() . '/mailmfa.css');
        }

        if ($this->rc->task == 'settings') {
            $this->settings = new mailmfa_settings($this, $this->rc, $this->panel, $this->credential);
            $this->add_hook('settings_actions', [$this->settings, 'settings_actions']);
            $this->register_action('plugin.mailmfa', [$this->settings, 'action_show']);
            $this->register_action('plugin.mailmfa-enable', [$this->settings, 'action_enable']);
            $this->register_action('plugin.mailmfa-confirm', [$this->settings, 'action_confirm']);
            $this->register_action('plugin.mailmfa-disable', [$this->settings, 'action_disable']);
            $this->register_action('plugin.mailmfa-app-create', [$this->settings, 'action_app_create']);
            $this->register_action('plugin.mailmfa-app-revoke', [$this->settings, 'action_app_revoke']);
            $this->register_action('plugin.mailmfa-recovery', [$this->settings, 'action_recovery']);
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

        $client = $this->panel->client_ip();
        $res = $this->panel->api('POST', '/api/v1/webmail/precheck', [
                'login'    => (string) $args['user'],
                'password' => (string) $args['pass'],
                'client'   => $client,
        ]);

        if ($res['status'] != 200 || !is_array($res['json'])) {
            // 401 (wrong password or password+code typed in one go), 429, 503, unreachable:
            // Roundcube logs in with the typed string as it always did.
            if ($res['status'] != 401) {
                $this->panel->log_panel('precheck', $res);
            }
            return $args;
        }

        $mfa   = $res['json']['mfa'] ?? null;
        $login = !empty($res['json']['login']) && is_string($res['json']['login']) ? $res['json']['login'] : null;

        if ($mfa !== 'on') {
            $this->credential->note_login($login, $mfa === 'off' ? 'off' : null);
            return $args;
        }

        // The password is right and the mailbox has MFA: keep a pending login, ask for the code.
        $_SESSION[self::PENDING] = [
            'user'   => (string) $args['user'],
            'host'   => $args['host'],
            'pass'   => $this->rc->encrypt((string) $args['pass']),
            'login'  => $login,
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
        $this->credential->note_login($pending['login'] ?? null, 'on');

        if (!empty($pending['url']) && empty($_POST['_url'])) {
            $_POST['_url'] = $pending['url'];
        }

        return $args;
    }

    /**
     * A typed code without spaces; a recovery code typed without its dashes gets them back
     * (the mail server knows recovery codes as abcd-efgh-ijkl).
     */
    public static function normalize_code($code)
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

        $this->credential->revoke_all();

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
    public function forget(...$keys)
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
}

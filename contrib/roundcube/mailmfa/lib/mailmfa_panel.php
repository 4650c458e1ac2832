<?php

/**
 * mailmfa: the client of the mailmfa User Panel's JSON API.
 *
 * Owns every HTTP call to the panel (admin token, X-Mailmfa-Login / X-Mailmfa-Owner-Client
 * headers, timeouts), the names the panel is told (the logged-in mailbox, the browser's
 * address) and the log line of a failed call. Secrets are never logged and never put into a
 * URL.
 *
 * @license MIT (as the mailmfa project)
 */
class mailmfa_panel
{
    /** @var rcmail */
    private $rc;

    /** The admin token, read once per request ('' when unreadable) */
    private $token = null;

    /**
     * @param rcmail $rc Roundcube
     */
    public function __construct(rcmail $rc)
    {
        $this->rc = $rc;
    }

    /**
     * A call with the owner's rules: admin token + the logged-in mailbox + the browser.
     *
     * @param string     $method HTTP method
     * @param string     $path   API path (/api/v1/...)
     * @param mixed|null $body   Request body, sent as JSON (null: none)
     *
     * @return array The same shape as api(); status 401 without a logged-in mailbox
     */
    public function owner_api($method, $path, $body = null)
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
     *
     * @return string The mailbox, '' when nobody is logged in
     */
    public function session_login()
    {
        $login = $_SESSION[mailmfa::LOGIN] ?? null;
        if (!is_string($login) || $login === '') {
            $login = (string) $this->rc->get_user_name();
        }

        return $login;
    }

    /**
     * The browser's address (Roundcube's remote_addr(): REMOTE_ADDR, or the forwarded
     * address when REMOTE_ADDR is in proxy_whitelist).
     *
     * @return string An IP address, '' when there is no valid one
     */
    public function client_ip()
    {
        $ip = trim((string) rcube_utils::remote_addr());
        return filter_var($ip, FILTER_VALIDATE_IP) ? $ip : '';
    }

    /**
     * The panel's admin token from mailmfa_admin_token_file ('' when it cannot be read,
     * which is logged once).
     */
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
     *
     * @param string      $method HTTP method
     * @param string      $path   API path (/api/v1/...)
     * @param mixed|null  $body   Request body, sent as JSON (null: none)
     * @param string|null $login  The mailbox the call is about (X-Mailmfa-Login), null: none
     * @param bool        $owner  Call with the owner's rules (sends X-Mailmfa-Owner-Client)
     *
     * @return array ['status' => int, 'json' => array|null, 'error' => string, 'message' => string]
     */
    public function api($method, $path, $body = null, $login = null, $owner = false)
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
     *
     * @param string $what The call's name (precheck, credential, revoke <name>, ...)
     * @param array  $res  The call's result from api()
     */
    public function log_panel($what, $res)
    {
        rcube::write_log('mailmfa', sprintf('panel %s: %s %s',
            $what,
            $res['status'] ? 'HTTP ' . $res['status'] : 'unreachable',
            $res['error'] !== '' ? $res['error'] : ''));
    }
}

<?php

/**
 * mailmfa: the Settings → Two-factor authentication page.
 *
 * Owns the settings section (settings_actions), its actions (plugin.mailmfa and the
 * plugin.mailmfa-* POSTs: enable, confirm, disable, app passwords, recovery codes), the
 * enrolment kept in the session (mailmfa::ENROL) and the page's HTML. Every change goes
 * through the panel's API with the owner's rules.
 *
 * @license MIT (as the mailmfa project)
 */
class mailmfa_settings
{
    /** @var mailmfa */
    private $plugin;

    /** @var rcmail */
    private $rc;

    /** @var mailmfa_panel */
    private $panel;

    /** @var mailmfa_credential */
    private $credential;

    /** Messages, values and forms for the settings page */
    private $page = [];

    /**
     * @param mailmfa            $plugin     The plugin (texts, template handler, script)
     * @param rcmail             $rc         Roundcube
     * @param mailmfa_panel      $panel      The panel's API client
     * @param mailmfa_credential $credential The session credential (made when MFA is enabled)
     */
    public function __construct(mailmfa $plugin, rcmail $rc, mailmfa_panel $panel, mailmfa_credential $credential)
    {
        $this->plugin     = $plugin;
        $this->rc         = $rc;
        $this->panel      = $panel;
        $this->credential = $credential;
    }

    /**
     * settings_actions: the "Two-factor authentication" section in Settings.
     */
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

        $res = $this->panel->owner_api('POST', '/api/v1/mfa/enrolment', new stdClass());
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
            $this->page['error'] = $this->plugin->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->panel->owner_api('POST', '/api/v1/mfa/enrolment/confirm', ['code' => $code]);
        if ($res['status'] == 200) {
            $this->plugin->forget(mailmfa::ENROL);
            $this->page['notice'] = $this->plugin->gettext('enabled');

            // The typed password alone no longer opens the mailbox: move this session onto
            // a session credential right away.
            if (empty($_SESSION[mailmfa::CREDENTIAL])) {
                if ($this->credential->new_credential() !== true) {
                    $_SESSION[mailmfa::RELOGIN] = true;
                    $this->page['notice'] = $this->plugin->gettext('enabledrelogin');
                }
            }
        }
        else {
            if (in_array($res['error'], ['enrolment_expired', 'enrolment_cancelled', 'no_enrolment'])) {
                $this->plugin->forget(mailmfa::ENROL);
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
            $this->page['error'] = $this->plugin->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->panel->owner_api('POST', '/api/v1/mfa/disable', ['code' => $code]);
        if ($res['status'] == 200) {
            $this->page['notice'] = $this->plugin->gettext('disabled');

            // The record and its app passwords (this session's credential too) are gone:
            // the session must be signed in again with the password alone.
            if (!empty($_SESSION[mailmfa::CREDENTIAL])) {
                $this->plugin->forget(mailmfa::CREDENTIAL, mailmfa::RETIRED);
                $_SESSION[mailmfa::RELOGIN] = true;
                $this->page['notice'] = $this->plugin->gettext('disabledrelogin');
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
            $this->page['error'] = $this->plugin->gettext('enterlabel');
            $this->send_settings();
        }
        if ($code === '') {
            $this->page['error'] = $this->plugin->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->panel->owner_api('POST', '/api/v1/app-passwords', ['label' => $label, 'code' => $code]);
        if ($res['status'] == 201 && is_array($res['json']) && !empty($res['json']['password'])) {
            $this->page['new_password'] = [
                'name'     => (string) ($res['json']['name'] ?? $label),
                'password' => (string) $res['json']['password'],
            ];
            $this->page['notice'] = $this->plugin->gettext('appcreated');
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
        $own  = $_SESSION[mailmfa::CREDENTIAL]['name'] ?? null;

        if ($name === '' || $name === $own) {
            $this->page['error'] = $this->plugin->gettext('appnotfound');
            $this->send_settings();
        }

        $res = $this->panel->owner_api('DELETE', '/api/v1/app-passwords/' . rawurlencode($name));
        if ($res['status'] == 204 || $res['status'] == 200) {
            $this->page['notice'] = $this->plugin->gettext(['name' => 'apprevoked', 'vars' => ['name' => $name]]);
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
            $this->page['error'] = $this->plugin->gettext('entercode');
            $this->send_settings();
        }

        $res = $this->panel->owner_api('POST', '/api/v1/recovery-codes', ['code' => $code]);
        if ($res['status'] == 201 && is_array($res['json']) && !empty($res['json']['codes'])) {
            $this->page['recovery_codes'] = array_map('strval', (array) $res['json']['codes']);
            $this->page['notice'] = $this->plugin->gettext('recoverycreated');
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
        return mailmfa::normalize_code(rcube_utils::get_input_string($field, rcube_utils::INPUT_POST));
    }

    private function api_error($res)
    {
        if (!empty($res['message'])) {
            $this->page['error'] = $res['message'];
        }
        else if ($res['status'] == 0) {
            $this->page['error'] = $this->plugin->gettext('panelunreachable');
        }
        else {
            $this->page['error'] = $this->plugin->gettext('panelerror');
        }

        if ($res['status'] == 0 || $res['status'] >= 500) {
            $this->panel->log_panel('settings', $res);
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
        $_SESSION[mailmfa::ENROL] = $this->rc->encrypt($data);
    }

    private function load_enrolment()
    {
        if (empty($_SESSION[mailmfa::ENROL])) {
            return null;
        }

        $data = json_decode((string) $this->rc->decrypt($_SESSION[mailmfa::ENROL]), true);
        if (!is_array($data) || empty($data['svg'])
            || (!empty($data['expires']) && $data['expires'] < time())
        ) {
            $this->plugin->forget(mailmfa::ENROL);
            return null;
        }

        return $data;
    }

    private function send_settings()
    {
        $this->plugin->register_handler('plugin.mailmfa_settings', [$this, 'settings_html']);
        $this->plugin->include_script('mailmfa.js');
        $this->rc->output->set_pagetitle($this->plugin->gettext('sectiontitle'));

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
        $status = $this->panel->owner_api('GET', '/api/v1/mfa');
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
            $this->panel->log_panel('status', $status);
            $text = $status['message'] ?: $this->plugin->gettext('panelunreachable');
            return $msg . html::div(['id' => 'mailmfa-status', 'class' => 'boxwarning'], rcube::Q($text));
        }

        $on = ($status['json']['mfa'] ?? 'off') === 'on';
        $digits = intval($status['json']['digits'] ?? 6) ?: 6;

        $out .= $msg;
        $out .= html::p(['id' => 'mailmfa-status', 'class' => 'mailmfa-status ' . ($on ? 'mailmfa-on' : 'mailmfa-off')],
            rcube::Q($this->plugin->gettext($on ? 'statuson' : 'statusoff')));

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
                html::p(null, rcube::Q($this->plugin->gettext('enableintro')))
                . html::p('formbuttons', $this->button('mailmfa-enable', $this->plugin->gettext('enable'))));

            return $this->fieldset($this->plugin->gettext('enabletitle'), $form);
        }

        $img = html::img([
                'id'     => 'mailmfa-qr',
                'src'    => 'data:image/svg+xml;base64,' . base64_encode($enrol['svg']),
                'alt'    => $this->plugin->gettext('qralt'),
                'width'  => 240,
                'height' => 240,
                'class'  => 'mailmfa-qr',
        ]);

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-confirm-code', rcube::Q($this->plugin->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_confirm_code', 'mailmfa-confirm-code'));

        $form = $this->post_form('plugin.mailmfa-confirm', 'mailmfa-confirm-form',
            html::p(null, rcube::Q($this->plugin->gettext('scanintro')))
            . html::div(['class' => 'mailmfa-qr-box'], $img)
            . html::p(null, rcube::Q($this->plugin->gettext('keyintro')) . ' '
                . html::tag('code', ['id' => 'mailmfa-key', 'class' => 'mailmfa-key'], rcube::Q($enrol['key'])))
            . html::p(null, rcube::Q($this->plugin->gettext(['name' => 'confirmintro', 'vars' => ['n' => $digits]])))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-verify', $this->plugin->gettext('verify'))));

        return $this->fieldset($this->plugin->gettext('enabletitle'), $form);
    }

    private function section_disable()
    {
        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-disable-code', rcube::Q($this->plugin->gettext('codeorrecovery'))));
        $table->add(null, $this->code_input('_mailmfa_disable_code', 'mailmfa-disable-code', 20));

        $form = $this->post_form('plugin.mailmfa-disable', 'mailmfa-disable-form',
            html::p(null, rcube::Q($this->plugin->gettext('disableintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-disable-submit', $this->plugin->gettext('disablesubmit'), 'btn btn-danger')));

        return html::tag('fieldset', ['id' => 'mailmfa-disable-section', 'class' => 'mailmfa-section'],
            html::tag('legend', null, rcube::Q($this->plugin->gettext('disabletitle'))) . $form);
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
            ], rcube::Q($this->plugin->gettext('disable')));
    }

    private function section_app_passwords($status)
    {
        $out = '';

        if (!empty($this->page['new_password'])) {
            $np = $this->page['new_password'];
            $out .= html::div(['class' => 'boxinformation mailmfa-new-password-box'],
                html::p(null, rcube::Q($this->plugin->gettext(['name' => 'appshownonce', 'vars' => ['name' => $np['name']]])))
                . html::p(null, html::tag('code', ['id' => 'mailmfa-new-password', 'class' => 'mailmfa-secret'], rcube::Q($np['password']))));
        }

        $list = $this->panel->owner_api('GET', '/api/v1/app-passwords');
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
            $table->add_header(null, rcube::Q($this->plugin->gettext('appname')));
            $table->add_header(null, rcube::Q($this->plugin->gettext('appcreated_col')));
            $table->add_header(null, rcube::Q($this->plugin->gettext('applastused')));
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
                $table->add('lastused', rcube::Q($used !== '' ? $used : $this->plugin->gettext('never')));
                $table->add('action', $this->post_form('plugin.mailmfa-app-revoke', null,
                    html::tag('input', ['type' => 'hidden', 'name' => '_mailmfa_app_name', 'value' => $name])
                    . html::tag('button', [
                            'type'  => 'submit',
                            'class' => 'btn btn-secondary btn-sm mailmfa-app-revoke',
                            'title' => $this->plugin->gettext(['name' => 'revoketitle', 'vars' => ['name' => $name]]),
                        ], rcube::Q($this->plugin->gettext('revoke'))),
                    ['class' => 'mailmfa-inline-form']));
            }

            $out .= $table->show();
        }
        else {
            $out .= html::p(['class' => 'mailmfa-app-none'], rcube::Q($this->plugin->gettext('appnone')));
        }

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-app-label', rcube::Q($this->plugin->gettext('applabel'))));
        $table->add(null, html::tag('input', [
                'type'         => 'text',
                'name'         => '_mailmfa_app_label',
                'id'           => 'mailmfa-app-label',
                'maxlength'    => 64,
                'autocomplete' => 'off',
                'class'        => 'form-control',
                'placeholder'  => $this->plugin->gettext('applabelhint'),
        ]));
        $table->add('title', html::label('mailmfa-app-code', rcube::Q($this->plugin->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_app_code', 'mailmfa-app-code'));

        $out .= $this->post_form('plugin.mailmfa-app-create', 'mailmfa-app-form',
            html::p(null, rcube::Q($this->plugin->gettext('appintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-app-create', $this->plugin->gettext('appcreate'))));

        return $this->fieldset($this->plugin->gettext('apptitle'), $out);
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
                html::p(null, rcube::Q($this->plugin->gettext('recoveryshownonce')))
                . html::tag('ul', ['id' => 'mailmfa-recovery-codes', 'class' => 'mailmfa-secret mailmfa-recovery-list'], $items));
        }

        $left = intval($status['recovery_codes_left'] ?? 0);
        $out .= html::p(['id' => 'mailmfa-recovery-left'],
            rcube::Q($this->plugin->gettext(['name' => 'recoveryleft', 'vars' => ['n' => $left]])));

        $table = new html_table(['cols' => 2, 'class' => 'propform']);
        $table->add('title', html::label('mailmfa-recovery-code', rcube::Q($this->plugin->gettext('codelabel'))));
        $table->add(null, $this->code_input('_mailmfa_recovery_code', 'mailmfa-recovery-code'));

        $out .= $this->post_form('plugin.mailmfa-recovery', 'mailmfa-recovery-form',
            html::p(null, rcube::Q($this->plugin->gettext('recoveryintro')))
            . $table->show()
            . html::p('formbuttons', $this->button('mailmfa-recovery-create', $this->plugin->gettext('recoverycreate'))));

        return $this->fieldset($this->plugin->gettext('recoverytitle'), $out);
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
}

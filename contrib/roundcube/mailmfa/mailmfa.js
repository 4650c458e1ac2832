/**
 * mailmfa plugin: small helpers for Settings -> Two-factor authentication.
 * The page works without it: every action is a plain POST form.
 */
window.rcmail && rcmail.addEventListener('init', function() {
    // "Disable MFA": go to the disable form and put the cursor into its code field.
    $('#mailmfa-disable').on('click', function(e) {
        var input = $('#mailmfa-disable-code');
        if (input.length) {
            e.preventDefault();
            input[0].scrollIntoView({block: 'center'});
            input.focus();
        }
    });

    // Codes: digits (and recovery codes' letters and dashes); spaces from a paste are fine,
    // the server strips them.
    $('input.mailmfa-code-input').attr('spellcheck', 'false');

    // A button shows "loading" while its form is sent, like Roundcube's own forms.
    $('.mailmfa-settings form').on('submit', function() {
        $('button[type=submit]', this).prop('disabled', true);
        rcmail.display_message('', 'loading');
    });
});

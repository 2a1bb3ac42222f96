#!/usr/bin/perl
# Sisimai's bounce reason for each SMTP reply given on stdin (one JSON object a
# line: id, code, text, command, rhost, recipient), printed as JSON lines (id,
# reason, softbounce, status).  Each reply is wrapped in the bounce Postfix
# would write for it ("host X said: <reply> (in reply to <command> command)"
# plus a delivery-status part), the form Sisimai reads best, so that its whole
# pipeline runs: the MTA module, the Rhost tables chosen by the remote host,
# the status code and the reason phrases.  Used by bench/compare_sisimai.py.
use strict;
use warnings;
use JSON::PP;
use Sisimai;

my $json = JSON::PP->new->canonical;
my @cases = map { $json->decode($_) } grep { /\S/ } <STDIN>;
my %in_reply_to = (
    'CONNECT' => undef, 'EHLO' => 'EHLO', 'HELO' => 'HELO', 'MAIL' => 'MAIL FROM',
    'RCPT' => 'RCPT TO', 'DATA' => 'DATA', 'DATA_END' => 'end of DATA', 'AUTH' => 'AUTH',
    'STARTTLS' => 'STARTTLS',
);
my $mbox = '';
my $n = 0;
for my $c (@cases) {
    $n++;
    my $reply = $c->{'code'} . ' ' . $c->{'text'};
    $reply =~ s/\n/ /g;
    my $status = $c->{'text'} =~ /\A([245]\.\d{1,3}\.\d{1,3})\b/ ? $1
               : substr($c->{'code'}, 0, 1) . '.0.0';
    my $action = substr($c->{'code'}, 0, 1) eq '4' ? 'delayed' : 'failed';
    my $cmd = $c->{'command'} // '';
    my $said;
    if( exists $in_reply_to{$cmd} && !defined $in_reply_to{$cmd} ) {
        $said = "host $c->{'rhost'}\[192.0.2.25] refused to talk to me: $reply";
    } elsif( $in_reply_to{$cmd} ) {
        $said = "host $c->{'rhost'}\[192.0.2.25] said: $reply (in reply to $in_reply_to{$cmd} command)";
    } else {
        $said = "host $c->{'rhost'}\[192.0.2.25] said: $reply";
    }
    my $rcpt = $c->{'recipient'};
    $mbox .= <<"MAIL";
From MAILER-DAEMON Mon Jan  5 10:00:00 2026
Return-Path: <>
Received: by mx.example.jp (Postfix) id 4Q$n; Mon,  5 Jan 2026 10:00:00 +0900 (JST)
Date: Mon,  5 Jan 2026 10:00:00 +0900 (JST)
From: MAILER-DAEMON\@mx.example.jp (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: sender\@example.jp
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4Q$n.1/mx.example.jp"
Message-Id: <20260105010000.4Q$n\@mx.example.jp>

This is a MIME-encapsulated message.

--4Q$n.1/mx.example.jp
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.jp.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

                   The mail system

<$rcpt>: $said

--4Q$n.1/mx.example.jp
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp
X-Postfix-Queue-ID: 4Q$n
X-Postfix-Sender: rfc822; sender\@example.jp
Arrival-Date: Mon,  5 Jan 2026 09:59:59 +0900 (JST)

Final-Recipient: rfc822; $rcpt
Original-Recipient: rfc822;$rcpt
Action: $action
Status: $status
Remote-MTA: dns; $c->{'rhost'}
Diagnostic-Code: smtp; $reply

--4Q$n.1/mx.example.jp
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <sender\@example.jp>
From: sender\@example.jp
To: $rcpt
Subject: test $n
Message-Id: <test$n\@example.jp>

--4Q$n.1/mx.example.jp--

MAIL
}
my $found = Sisimai->make(\$mbox, 'delivered' => 1) // [];
my %by_rcpt = map { $_->recipient->address => $_ } @$found;
for my $c (@cases) {
    my $d = $by_rcpt{lc $c->{'recipient'}};
    print $json->encode({
        'id' => $c->{'id'},
        'reason' => $d ? $d->reason : undef,
        'softbounce' => $d ? $d->softbounce : undef,
        'status' => $d ? $d->deliverystatus : undef,
    }), "\n";
}

/* block
 { comment */
$x = "a ${hash['k']} {" # } comment
if $::fqdn =~ /^db\d{2}$/ { notice('x') }
$h = @("END"/L)
  not code: ' { "
  |- END
node /^web\d{1,2}$/, 'web', default {
}
node "db" ,'db1.lab' {
}

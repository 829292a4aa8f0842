-- POST /api/users/login for one account (register test@example.com / password123 first), for wrk -s.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"test@example.com","password":"password123"}'

"""The station's books (docs/books.md): deliveries received, non-sale fuel, totalizer
corrections, price periods, month close (进销存) and credit accounts (挂账).

`edge.books.parts.Books` puts the parts together for the daemon and the API."""
